/** Gateway input validation, failover order and address helpers (pure functions, unit-tested). */
import { isIP } from 'node:net';
import { DomainError } from '../errors.js';
import type { Gateway, GatewayDns, GatewayTransport, NewGateway, TrunkRegistration } from './types.js';
import { GATEWAY_TRANSPORTS } from './types.js';

/**
 * Bad gateway input or a refused gateway operation (answered as ERROR with the text). `legacyStatus` is the old
 * API's HTTP status: 421 a missing parameter, 404 an unknown gateway, 412 anything else.
 */
export class GatewayError extends DomainError {
  constructor(message: string, legacyStatus = 412) {
    super(message, legacyStatus === 404 ? 'notfound' : 'input', { legacyStatus });
  }
}

// ------------------------------------------------------------------ pure helpers (unit-tested)

/** An address in a comparable form: lower case, no brackets/zone, IPv4-mapped IPv6 as IPv4. '' when not an IP. */
export function normalizeIp(raw: string): string {
  let s = (raw ?? '').trim().toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (mapped) s = mapped[1]!;
  return isIP(s) ? s : '';
}

/** The addresses of an inbound_ip value. */
export function inboundIps(v: string): string[] {
  return v
    .split(/[\s,;]+/)
    .map(normalizeIp)
    .filter(Boolean);
}

/**
 * The number sent to a gateway: `strip` leading digits removed, then `addprefix` in front; undefined when nothing is
 * left.
 */
export function dialNumber(gw: Pick<Gateway, 'strip' | 'addprefix'>, number: string): string | undefined {
  if (gw.strip > number.length) return undefined;
  const out = gw.addprefix + number.slice(gw.strip);
  return out === '' || out === '+' ? undefined : out;
}

/**
 * The gateways that serve `number` in failover order: enabled, prefix a prefix of the number ('' = any), longest
 * prefix first, then priority ascending, then a weighted random order among equals (Efraimidis–Spirakis: each
 * gateway draws key = −ln(u)/weight and the smaller key goes first, so a gateway of weight w is first among its
 * group with probability w/Σw; weight 0 goes after every positive weight of its group).
 */
export function orderGateways(gws: readonly Gateway[], number: string, rng: () => number = Math.random): Gateway[] {
  const keyed = gws
    .filter((g) => g.enabled && number.startsWith(g.prefix))
    .map((g) => {
      let u = rng();
      if (!(u > 0)) u = Number.MIN_VALUE;
      if (u >= 1) u = 1 - Number.EPSILON;
      const w = Math.max(0, g.weight);
      // weight 0: after all positive weights, random among themselves
      const key = w > 0 ? -Math.log(u) / w : Number.POSITIVE_INFINITY;
      return { g, key, tie: u };
    });
  keyed.sort(
    (a, b) =>
      b.g.prefix.length - a.g.prefix.length ||
      a.g.priority - b.g.priority ||
      (a.key === b.key ? 0 : a.key - b.key) ||
      a.tie - b.tie,
  );
  return keyed.map((k) => k.g);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOST_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$/;
export const PRINTABLE_RE = /^[^\x00-\x1f\x7f]*$/;

function intIn(v: string | undefined, name: string, min: number, max: number, def: number): number {
  if (v === undefined || v.trim() === '') return def;
  const t = v.trim();
  if (!/^\d{1,10}$/.test(t) || Number(t) < min || Number(t) > max)
    throw new GatewayError(`${name}: expected a whole number from ${min} to ${max}, got "${t.slice(0, 40)}"`);
  return Number(t);
}

/** Validates addgateway's raw parameters (strings as they arrive) into a NewGateway; throws GatewayError. */
export function validateGatewayInput(p: Record<string, string | undefined>): NewGateway {
  const name = (p.name ?? '').trim();
  if (!name) throw new GatewayError('name: the gateway name is missing', 421);
  if (!NAME_RE.test(name))
    throw new GatewayError('name: 1-64 characters of letters, digits and _.- starting with a letter or digit');
  let host = (p.host ?? '').trim();
  if (!host) throw new GatewayError('host: the gateway address (IP or host name) is missing', 421);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!isIP(host) && !HOST_RE.test(host))
    throw new GatewayError(
      `host: "${host.slice(0, 60)}" is neither an IP address nor a host name (give the port in port=, not in host)`,
    );
  const transportGiven = (p.transport ?? '').trim() !== '';
  const transportRaw = (p.transport ?? '').trim().toLowerCase() || 'udp';
  if (!(GATEWAY_TRANSPORTS as readonly string[]).includes(transportRaw))
    throw new GatewayError(`transport: expected udp, tcp or tls, got "${transportRaw.slice(0, 20)}"`);
  const transport = transportRaw as GatewayTransport;
  const port = intIn(p.port, 'port', 1, 65535, transport === 'tls' ? 5061 : 5060);
  const username = p.username ?? '';
  if (username.length > 128 || !PRINTABLE_RE.test(username))
    throw new GatewayError('username: at most 128 printable characters');
  const password = p.password ?? '';
  if (password.length > 128 || !PRINTABLE_RE.test(password))
    throw new GatewayError('password: at most 128 printable characters');
  const prefix = (p.prefix ?? '').trim().replace(/^\+/, '');
  if (!/^\d{0,32}$/.test(prefix))
    throw new GatewayError(
      `prefix: 0-32 digits of the normalised (international, no +) number this gateway serves, got ` +
        `"${prefix.slice(0, 40)}"`,
    );
  const strip = intIn(p.strip, 'strip', 0, 32, 0);
  const addprefix = (p.addprefix ?? '').trim();
  if (!/^\+?[0-9*#]{0,31}$/.test(addprefix))
    throw new GatewayError(
      `addprefix: up to 31 digits (* and # allowed, optional leading +), got "${addprefix.slice(0, 40)}"`,
    );
  const priority = intIn(p.priority, 'priority', 0, 1000, 10);
  const weight = intIn(p.weight, 'weight', 0, 1000, 1);
  const inRaw = (p.inbound_ip ?? p.inboundip ?? '').trim();
  const ips: string[] = [];
  for (const part of inRaw.split(/[\s,;]+/).filter(Boolean)) {
    const ip = normalizeIp(part);
    if (!ip) throw new GatewayError(`inbound_ip: "${part.slice(0, 60)}" is not an IP address`);
    if (!ips.includes(ip)) ips.push(ip);
  }
  const inboundIp = ips.join(',');
  if (inboundIp.length > 64) throw new GatewayError('inbound_ip: at most 64 characters in all');
  const en = (p.enabled ?? '').trim().toLowerCase();
  if (en && !/^(0|1|true|false|yes|no|on|off)$/.test(en))
    throw new GatewayError(`enabled: expected 1 or 0, got "${en.slice(0, 20)}"`);
  const enabled = en === '' || /^(1|true|yes|on)$/.test(en);
  const portGiven = (p.port ?? '').trim() !== '';
  const dns: GatewayDns = isIP(host) || portGiven ? '' : transportGiven ? 'srv' : 'naptr';
  const registration = validateRegistration(p, username);
  if (registration.register && !(registration.user || username))
    throw new GatewayError('register_user: registering needs the trunk account (register_user or username)', 421);
  return {
    name,
    host,
    port,
    transport,
    username,
    password,
    prefix,
    strip,
    addprefix,
    priority,
    weight,
    inboundIp,
    enabled,
    dns,
    registration,
  };
}

const USER_RE = /^[A-Za-z0-9_.!~*'()&=+$,;?/%+-]{0,128}$/;

function userField(p: Record<string, string | undefined>, name: string): string {
  const v = (p[name] ?? '').trim();
  if (!USER_RE.test(v)) throw new GatewayError(`${name}: at most 128 characters allowed in a SIP user part`);
  return v;
}

/** The trunk registration parameters of addgateway (register, register_expires, register_user, …). */
export function validateRegistration(p: Record<string, string | undefined>, username: string): TrunkRegistration {
  const r = (p.register ?? '').trim().toLowerCase();
  if (r && !/^(0|1|true|false|yes|no|on|off)$/.test(r))
    throw new GatewayError(`register: expected 1 or 0, got "${r.slice(0, 20)}"`);
  const realm = (p.realm ?? '').trim();
  if (realm.length > 128 || !PRINTABLE_RE.test(realm) || realm.includes('"'))
    throw new GatewayError('realm: at most 128 printable characters (no quotes)');
  const authUser = (p.auth_user ?? '').trim();
  if (authUser.length > 128 || !PRINTABLE_RE.test(authUser) || authUser.includes('"'))
    throw new GatewayError('auth_user: at most 128 printable characters (no quotes)');
  const user = userField(p, 'register_user');
  const register = /^(1|true|yes|on)$/.test(r);
  if (register && !user && !USER_RE.test(username))
    throw new GatewayError('register_user: the username is not a SIP user part, give register_user');
  return {
    register,
    expires: intIn(p.register_expires, 'register_expires', 10, 86400, 3600),
    user,
    authUser,
    realm,
    contact: userField(p, 'register_contact'),
  };
}

/** The Contact user a registering gateway registers ('' when it does not register). */
export function trunkContactUser(g: Pick<Gateway, 'registration' | 'username'>): string {
  const r = g.registration;
  return r.register ? r.contact || r.user || g.username : '';
}

/**
 * editgateway's input: the gateway's current settings with the given parameters laid over them, validated as
 * addgateway validates (so an edit can store nothing addgateway would refuse). A host name whose port was found by
 * DNS keeps the look-up unless a port is given. `password` undefined keeps the stored one; '' removes it.
 */
export function validateGatewayEdit(
  g: Gateway,
  p: Record<string, string | undefined>,
): { gateway: NewGateway; keepPassword: boolean } {
  const given = (k: string) => p[k] !== undefined;
  const current: Record<string, string | undefined> = {
    name: g.name,
    host: g.host,
    // a DNS-resolved gateway has no port or transport of its own: leave them out unless they are changed
    port: g.dns === '' ? String(g.port) : undefined,
    transport: g.dns !== 'naptr' ? g.transport : undefined,
    username: g.username,
    prefix: g.prefix,
    strip: String(g.strip),
    addprefix: g.addprefix,
    priority: String(g.priority),
    weight: String(g.weight),
    inbound_ip: g.inboundIp,
    enabled: g.enabled ? '1' : '0',
    register: g.registration.register ? '1' : '0',
    register_expires: String(g.registration.expires),
    register_user: g.registration.user,
    auth_user: g.registration.authUser,
    realm: g.registration.realm,
    register_contact: g.registration.contact,
  };
  const merged: Record<string, string | undefined> = { ...current };
  for (const k of Object.keys(current)) if (given(k)) merged[k] = p[k];
  if (!given('inbound_ip') && given('inboundip')) merged.inbound_ip = p.inboundip;
  const keepPassword = !given('password');
  merged.password = keepPassword ? '' : p.password;
  return { gateway: validateGatewayInput(merged), keepPassword };
}
