/**
 * Call routing: decides where a call goes, without placing it.
 *
 * CONTRACT (used by CALLS-B and CALLS-3): RouteRequest, RouteDecision, Gateway, GatewayCandidate and the
 * RoutingService methods route() / gatewayForIp() are stable. The composition root (src/server.ts) builds the one
 * instance of a server (`services.routing`).
 *
 * Rules, in order:
 *  1. An empty called number → reject 484.
 *  2. The called number names a local user → kind 'user' (with their forwarding rules): by username (also a
 *     numeric "extension" username), else by DID: tb_users.did or a tb_numbers row assigned to the user
 *     (the digits as dialled and the number normalised for the caller's country are both tried).
 *     A disabled callee → reject 403.
 *  3. Without an authenticated caller: a call from a gateway's inbound_ip may only reach a local user/DID
 *     (no transit: otherwise reject 404); from any other address → reject 403 (the B2BUA must authenticate first).
 *  4. An authenticated caller to an outside number: the caller must be enabled (403); the number is normalised
 *     and rated for the caller (bad number → 484, no rate → 404, rate currency ≠ account currency → 403), the
 *     credit (balance minus `reservedCredit`) must pay the first billed block (else 402 "insufficient credit"),
 *     then the enabled gateways whose prefix starts the normalised number are ordered: longest prefix first,
 *     priority ascending, then a weighted random order among equals (weight 0 = only after the others of its group).
 *     That list is the failover order. No gateway → reject 503.
 */
import type { Selectable } from 'kysely';
import type { GatewaysTable } from '../../storage/schema.js';
import type { DomainServices } from '../deps.js';
import type { User } from '../accounts/users.js';
import { SecretBox } from '../accounts/secrets.js';
import { NoRateError, InvalidNumberError, type Quote } from '../rating/service.js';
import { phoneDigits as digitsOf, type ForwardTarget } from '../numbers/service.js';
import {
  GATEWAY_TRANSPORTS,
  type Gateway,
  type GatewayCandidate,
  type GatewayTransport,
  type NewGateway,
  type RouteDecision,
  type RouteRequest,
  type TrunkConfig,
} from './types.js';
import {
  GatewayError,
  PRINTABLE_RE,
  dialNumber,
  inboundIps,
  normalizeIp,
  orderGateways,
  trunkContactUser,
} from './gateways.js';

export * from './types.js';
export * from './gateways.js';

// ------------------------------------------------------------------ the service

type GatewayRow = Selectable<GatewaysTable>;

function toGateway(r: GatewayRow): Gateway {
  const t = String(r.transport).toLowerCase();
  return {
    id: Number(r.id),
    name: r.name,
    host: r.host,
    port: Number(r.port),
    transport: (GATEWAY_TRANSPORTS as readonly string[]).includes(t) ? (t as GatewayTransport) : 'udp',
    username: r.username ?? '',
    passwordEnc: r.password_enc ?? '',
    prefix: r.prefix ?? '',
    strip: Math.max(0, Number(r.strip)),
    addprefix: r.addprefix ?? '',
    priority: Number(r.priority),
    weight: Number(r.weight),
    inboundIp: r.inbound_ip ?? '',
    enabled: Number(r.enabled) !== 0,
    createdAt: Number(r.created_at),
    dns: r.dns === 'srv' || r.dns === 'naptr' ? r.dns : '',
    registration: {
      register: Number(r.register ?? 0) === 1,
      expires: Number(r.register_expires ?? 3600),
      user: r.register_user ?? '',
      authUser: r.auth_user ?? '',
      realm: r.realm ?? '',
      contact: r.register_contact ?? '',
    },
  };
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /unique|duplicate/i.test(String(err?.message ?? ''));
}

/** How long the in-memory gateway list is trusted when nothing in this process changed it. */
const CACHE_MS = 5_000;

export interface RoutingOptions {
  /** Random source for the weighted order (tests inject one). */
  rng?: () => number;
  /** The server's SecretBox; default: SecretBox.fromDataDir(config.dataDir). */
  box?: SecretBox;
}

export class RoutingService {
  /** Bumped by every gateway write in this process, so every instance reloads its list at once. */
  private static generation = 0;
  private cache?: { gen: number; at: number; list: Gateway[]; byIp: Map<string, Gateway> };
  private boxInstance?: SecretBox;
  /** address → id of the registering gateway whose host resolved to it */
  private readonly trusted = new Map<string, number>();
  rng: () => number;

  constructor(
    readonly services: DomainServices,
    opts: RoutingOptions = {},
  ) {
    this.rng = opts.rng ?? Math.random;
    this.boxInstance = opts.box;
  }

  private get box(): SecretBox {
    this.boxInstance ??= SecretBox.fromDataDir(this.services.config.dataDir);
    return this.boxInstance;
  }

  private get db() {
    return this.services.storage.db;
  }

  // -------------------------------------------------------------- gateways

  /** All gateways (enabled or not), by priority then name; cached for a few seconds. */
  async gateways(): Promise<Gateway[]> {
    return (await this.load()).list;
  }

  private async load(): Promise<{ list: Gateway[]; byIp: Map<string, Gateway> }> {
    const c = this.cache;
    if (c && c.gen === RoutingService.generation && Date.now() - c.at < CACHE_MS) return c;
    const gen = RoutingService.generation;
    const rows = await this.db.selectFrom('tb_gateways').selectAll().orderBy('priority').orderBy('name').execute();
    const list = rows.map((r) => toGateway(r as unknown as GatewayRow));
    const byIp = new Map<string, Gateway>();
    for (const g of list) if (g.enabled) for (const ip of inboundIps(g.inboundIp)) if (!byIp.has(ip)) byIp.set(ip, g);
    this.cache = { gen, at: Date.now(), list, byIp };
    return this.cache;
  }

  /** Forgets the cached gateway list in every instance of this process. */
  static invalidate(): void {
    RoutingService.generation++;
  }

  async gateway(nameOrId: string | number): Promise<Gateway | undefined> {
    const list = await this.gateways();
    if (typeof nameOrId === 'number') return list.find((g) => g.id === nameOrId);
    return (
      list.find((g) => g.name === nameOrId) ??
      (/^\d+$/.test(nameOrId) ? list.find((g) => g.id === Number(nameOrId)) : undefined)
    );
  }

  /** A gateway's settings as tb_gateways columns (the password encrypted with the server key). */
  private gatewayColumns(g: NewGateway) {
    return {
      name: g.name,
      host: g.host,
      port: g.port,
      transport: g.transport,
      username: g.username,
      password_enc: g.password ? this.box.encrypt(g.password) : '',
      prefix: g.prefix,
      strip: g.strip,
      addprefix: g.addprefix,
      priority: g.priority,
      weight: g.weight,
      inbound_ip: g.inboundIp,
      enabled: g.enabled ? 1 : 0,
      dns: g.dns,
      register: g.registration.register ? 1 : 0,
      register_expires: g.registration.expires,
      register_user: g.registration.user,
      auth_user: g.registration.authUser,
      realm: g.registration.realm,
      register_contact: g.registration.contact,
    };
  }

  /** Adds a gateway (password encrypted with the server key). Throws GatewayError on a duplicate name. */
  async addGateway(g: NewGateway): Promise<Gateway> {
    const row = { ...this.gatewayColumns(g), created_at: Date.now() };
    try {
      await this.db.insertInto('tb_gateways').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e))
        throw new GatewayError(`a gateway named "${g.name}" already exists (delgateway it first)`);
      throw e;
    } finally {
      RoutingService.invalidate();
    }
    const r = await this.db.selectFrom('tb_gateways').selectAll().where('name', '=', g.name).executeTakeFirstOrThrow();
    return toGateway(r as unknown as GatewayRow);
  }

  /**
   * Replaces a gateway's settings (validated by validateGatewayEdit); the stored password stays when `keepPassword`.
   * Throws GatewayError when it is gone or the new name is taken.
   */
  async updateGateway(id: number, g: NewGateway, keepPassword: boolean): Promise<Gateway> {
    const { password_enc, ...rest } = this.gatewayColumns(g);
    const row = keepPassword ? rest : { ...rest, password_enc };
    let changed: number;
    try {
      const r = await this.db.updateTable('tb_gateways').set(row).where('id', '=', id).executeTakeFirst();
      changed = Number(r.numUpdatedRows);
    } catch (e) {
      if (isUniqueViolation(e)) throw new GatewayError(`a gateway named "${g.name}" already exists`);
      throw e;
    } finally {
      RoutingService.invalidate();
    }
    if (changed !== 1) throw new GatewayError(`gateway ${id} was deleted meanwhile`, 404);
    const r = await this.db.selectFrom('tb_gateways').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return toGateway(r as unknown as GatewayRow);
  }

  /** Deletes a gateway by name (or numeric id); returns what was deleted. */
  async deleteGateway(nameOrId: string): Promise<Gateway> {
    const key = nameOrId.trim();
    if (!key) throw new GatewayError('name: which gateway to delete (name or id)', 421);
    let r = await this.db.selectFrom('tb_gateways').selectAll().where('name', '=', key).executeTakeFirst();
    if (!r && /^\d{1,10}$/.test(key))
      r = await this.db.selectFrom('tb_gateways').selectAll().where('id', '=', Number(key)).executeTakeFirst();
    if (!r) throw new GatewayError(`no gateway named "${key.slice(0, 64)}"`, 404);
    const d = await this.db.deleteFrom('tb_gateways').where('id', '=', r.id).executeTakeFirst();
    RoutingService.invalidate();
    if (Number(d.numDeletedRows) !== 1)
      throw new GatewayError(`gateway "${key.slice(0, 64)}" was deleted meanwhile`, 404);
    return toGateway(r as unknown as GatewayRow);
  }

  /**
   * The enabled gateway whose inbound_ip is this address (a trusted source of DID calls), if any; else the
   * registering gateway whose host resolved to it (`trustAddresses`).
   */
  async gatewayForIp(ip: string): Promise<Gateway | undefined> {
    const n = normalizeIp(ip);
    if (!n) return undefined;
    const c = await this.load();
    const byIp = c.byIp.get(n);
    if (byIp) return byIp;
    const id = this.trusted.get(n);
    return id === undefined ? undefined : c.list.find((g) => g.id === id && g.enabled && g.registration.register);
  }

  /**
   * The addresses a registering gateway's host resolves to (the trunk registrar tells them): calls from there are
   * the trunk's inbound calls, as from its inbound_ip. Replaces what was told before for that gateway.
   */
  trustAddresses(gatewayId: number, ips: readonly string[]): void {
    for (const [ip, id] of this.trusted) if (id === gatewayId) this.trusted.delete(ip);
    for (const raw of ips) {
      const n = normalizeIp(raw);
      if (n && !this.trusted.has(n)) this.trusted.set(n, gatewayId);
    }
  }

  /** The enabled gateways that register (register=1), with their credentials decrypted. */
  async trunks(): Promise<TrunkConfig[]> {
    const out: TrunkConfig[] = [];
    for (const g of (await this.load()).list) {
      if (!g.enabled || !g.registration.register) continue;
      const password = this.password(g);
      if (password === undefined) continue;
      const r = g.registration;
      const aor = r.user || g.username;
      out.push({
        id: g.id,
        name: g.name,
        host: g.host,
        port: g.port,
        transport: g.transport,
        dns: g.dns,
        aor,
        authUser: r.authUser || r.user || g.username,
        password,
        realm: r.realm,
        contact: trunkContactUser(g),
        expires: r.expires,
      });
    }
    return out;
  }

  /** A gateway's clear password ('' none); undefined (logged) when it cannot be decrypted. */
  private password(g: Gateway): string | undefined {
    if (!g.passwordEnc) return '';
    try {
      return this.box.decrypt(g.passwordEnc);
    } catch {
      this.services.log.warn(
        { gateway: g.name },
        'gateway password cannot be decrypted (server.key changed?): gateway skipped',
      );
      return undefined;
    }
  }

  /** The ordered, dialable candidates for a normalised number (passwords decrypted). */
  async candidatesFor(number: string): Promise<GatewayCandidate[]> {
    const ordered = orderGateways((await this.load()).list, number, this.rng);
    const out: GatewayCandidate[] = [];
    for (const g of ordered) {
      const dial = dialNumber(g, number);
      if (dial === undefined) continue;
      const password = this.password(g);
      if (password === undefined) continue;
      out.push({
        id: g.id,
        name: g.name,
        host: g.host,
        port: g.port,
        transport: g.transport,
        username: g.username,
        password,
        number: dial,
        dns: g.dns,
      });
    }
    return out;
  }

  // -------------------------------------------------------------- local users

  /** The local user a dialled string names: by username, else by DID (tb_users.did or an assigned tb_numbers row). */
  async localUser(called: string, country = ''): Promise<User | undefined> {
    const s = this.services;
    const byName = await s.users.byUsername(called);
    if (byName) return byName;
    const digits = digitsOf(called);
    if (!digits) return undefined;
    const forms = new Set<string>([digits]);
    try {
      forms.add(s.rating.normalize(called, country));
    } catch {
      /* not a normalisable number: the dialled digits only */
    }
    const list = [...forms];
    const didForms = list.flatMap((d) => [d, '+' + d]);
    const u = await this.db
      .selectFrom('tb_users')
      .select('id')
      .where('did', 'in', didForms)
      .orderBy('id')
      .executeTakeFirst();
    if (u) return s.users.byId(Number(u.id));
    const n = await this.db
      .selectFrom('tb_numbers')
      .select('userid')
      .where('number', 'in', list)
      .where('status', '=', 'assigned')
      .where('userid', '>', 0)
      .orderBy('id')
      .executeTakeFirst();
    if (n) return s.users.byId(Number(n.userid));
    return undefined;
  }

  private async userDecision(target: User, called: string): Promise<RouteDecision> {
    if (!target.enabled) return { kind: 'reject', status: 403, reason: `the account "${target.username}" is disabled` };
    const rules = await this.services.numbers.forwardRules(target.id);
    const str = (t: ForwardTarget | null) => (t ? (t.kind === 'user' ? t.username : t.number) : undefined);
    const forward: { always?: string; busy?: string; noanswer?: string } = {};
    if (rules.always) forward.always = str(rules.always);
    if (rules.busy) forward.busy = str(rules.busy);
    if (rules.noanswer) forward.noanswer = str(rules.noanswer);
    const d: RouteDecision = { kind: 'user', user: target, number: called };
    if (forward.always || forward.busy || forward.noanswer) d.forward = forward;
    return d;
  }

  // -------------------------------------------------------------- routing

  async route(r: RouteRequest): Promise<RouteDecision> {
    const s = this.services;
    const called = (r.called ?? '').trim();
    if (!called) return { kind: 'reject', status: 484, reason: 'no number dialled' };
    if (called.length > 128 || !PRINTABLE_RE.test(called))
      return { kind: 'reject', status: 484, reason: 'the dialled number is not valid' };

    const target = await this.localUser(called, r.user?.country ?? '');
    if (r.user && !r.user.enabled)
      return { kind: 'reject', status: 403, reason: `the account "${r.user.username}" is disabled` };
    if (target) {
      if (!r.user && !(await this.gatewayForIp(r.fromIp))) {
        return { kind: 'reject', status: 403, reason: 'the caller is not authenticated and not a known gateway' };
      }
      return this.userDecision(target, called);
    }
    if (!r.user) {
      const gw = await this.gatewayForIp(r.fromIp);
      if (gw)
        return {
          kind: 'reject',
          status: 404,
          reason:
            `no user or DID "${called.slice(0, 40)}" on this server ` +
            `(calls from gateway "${gw.name}" only reach DIDs)`,
        };
      return { kind: 'reject', status: 403, reason: 'the caller is not authenticated and not a known gateway' };
    }

    let quote: Quote;
    try {
      quote = await s.rating.quote(r.user, called);
    } catch (e) {
      if (e instanceof InvalidNumberError) return { kind: 'reject', status: 484, reason: e.message };
      if (e instanceof NoRateError) return { kind: 'reject', status: 404, reason: e.message };
      throw e;
    }
    const blocked = s.config.get('blockedprefixes').find((prefix) => quote.number.startsWith(prefix));
    if (blocked !== undefined)
      return {
        kind: 'reject',
        status: 403,
        reason: `destination ${quote.number} is blocked (blockedprefixes ${blocked})`,
      };
    const b = await s.ledger.balance(r.user.id);
    if (!b) return { kind: 'reject', status: 403, reason: `the account "${r.user.username}" no longer exists` };
    if (b.currency !== quote.rate.currency) {
      return {
        kind: 'reject',
        status: 403,
        reason: `the rate to ${quote.number} is in ${quote.rate.currency} but the account is in ${b.currency}`,
      };
    }
    const credit = b.credit - Math.max(0, r.reservedCredit ?? 0);
    const maxDuration = s.rating.maxDuration(credit, quote.rate);
    if (maxDuration <= 0) return { kind: 'reject', status: 402, reason: 'insufficient credit' };

    const candidates = await this.candidatesFor(quote.number);
    if (!candidates.length) return { kind: 'reject', status: 503, reason: `no gateway serves ${quote.number}` };
    return {
      kind: 'gateways',
      number: quote.number,
      rate: quote.rate,
      quote,
      candidates,
      maxDuration,
      credit: b.credit,
      currency: b.currency,
    };
  }
}
