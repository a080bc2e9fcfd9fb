/**
 * Routing commands: gateways (addgateway, editgateway, delgateway, gateways) and routingtest. The work is in
 * RoutingService.
 */
import { isIP } from 'node:net';
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { User } from '../../domain/accounts/users.js';
import { isAdminType } from '../../domain/accounts/types.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { formatPrice } from '../../domain/rating/rate.js';
import {
  GatewayError,
  validateGatewayInput,
  validateGatewayEdit,
  normalizeIp,
  type Gateway,
  type RouteDecision,
} from '../../domain/routing/service.js';
import type { TrunkState } from '../../sip/trunks/registrar.js';

async function guarded(fn: () => Promise<ApiResult>): Promise<ApiResult> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof GatewayError) return fail(e.message, { legacyStatus: e.legacyStatus });
    throw e;
  }
}

/** A gateway's settings in the positional order of addgateway (editgateway adds id and enabled). */
const GATEWAY_FIELDS = [
  'name',
  'host',
  'port',
  'transport',
  'username',
  'password',
  'prefix',
  'strip',
  'addprefix',
  'priority',
  'weight',
  'inbound_ip',
];
/** The trunk registration settings (after the others in addgateway's and editgateway's order). */
const REGISTRATION_FIELDS = ['register', 'register_expires', 'register_user', 'auth_user', 'realm', 'register_contact'];

const GATEWAY_COLUMNS = [
  'id',
  ...GATEWAY_FIELDS,
  'enabled',
  ...REGISTRATION_FIELDS,
  'dns',
  'reg_status',
  'reg_cause',
  'reg_expires',
  'reg_at',
  'reg_next',
  'reg_registrar',
  'reg_owner',
];

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : '');

/** The registration columns of a gateway: its settings, and its state when it registers. */
function registrationRow(g: Gateway, st: TrunkState | undefined): Record<string, string | number> {
  const r = g.registration;
  return {
    register: r.register ? 1 : 0,
    register_expires: r.expires,
    register_user: r.user,
    auth_user: r.authUser,
    realm: r.realm,
    register_contact: r.contact,
    dns: g.dns,
    reg_status: st?.status ?? (r.register && g.enabled ? 'pending' : ''),
    reg_cause: st?.cause ?? '',
    reg_expires: st?.expires ?? 0,
    reg_at: iso(st?.registeredAt ?? 0),
    reg_next: iso(st?.nextTry ?? 0),
    reg_registrar: st?.registrar ?? '',
    reg_owner: st?.owner ?? '',
  };
}

/** A gateway as the API shows it: never the password, only whether one is set. */
function gatewayRow(g: Gateway, st?: TrunkState): Record<string, string | number> {
  return {
    id: g.id,
    name: g.name,
    host: g.host,
    port: g.port,
    transport: g.transport,
    username: g.username,
    password: g.passwordEnc ? 'set' : '',
    prefix: g.prefix,
    strip: g.strip,
    addprefix: g.addprefix,
    priority: g.priority,
    weight: g.weight,
    inbound_ip: g.inboundIp,
    enabled: g.enabled ? 1 : 0,
    ...registrationRow(g, st),
  };
}

const hostPort = (host: string, port: number) => `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

/**
 * The user routingtest acts as: a username, else the owner of a caller number (CLI) or of a DID; default the API
 * caller.
 */
async function callerUser(ctx: CommandContext, raw: string): Promise<User | undefined> {
  const s = ctx.services;
  if (!raw) return ctx.caller.user;
  const byName = await s.users.byUsername(raw);
  if (byName) return byName;
  const cli = await s.numbers.cliOwner(raw);
  if (cli !== undefined) return s.users.byId(cli);
  return undefined;
}

function decisionAnswer(ctx: CommandContext, d: RouteDecision, base: Record<string, string | number>): ApiResult {
  if (d.kind === 'reject') {
    return fail(`the call would be rejected: ${d.status} ${d.reason}`, {
      fields: { ...base, route: 'reject', status: d.status, reason: d.reason },
      legacyStatus: d.status === 404 ? 404 : 412,
    });
  }
  if (d.kind === 'user') {
    const f = d.forward ?? {};
    const fwd = [f.always && `always→${f.always}`, f.busy && `busy→${f.busy}`, f.noanswer && `noanswer→${f.noanswer}`]
      .filter(Boolean)
      .join(', ');
    return ok(`route: local user ${d.user.username}${fwd ? ` (forward ${fwd})` : ''}`, {
      fields: {
        ...base,
        route: 'user',
        username: d.user.username,
        number: d.number,
        // 1/0 whether the callee has a registered contact now ('' without the SIP core)
        registered: ctx.services.sip ? (ctx.services.sip.location.isOnline(d.user.username) ? 1 : 0) : '',
        forward_always: f.always ?? '',
        forward_busy: f.busy ?? '',
        forward_noanswer: f.noanswer ?? '',
      },
    });
  }
  const r = d.rate;
  const list = d.candidates
    .map((c, i) => `${i + 1}. ${c.name} ${hostPort(c.host, c.port)}/${c.transport} number ${c.number}`)
    .join('; ');
  return ok(
    `route: gateways for ${d.number}: ${list}; rate ${formatPrice(r.price)} ${r.currency}/min to ` +
      `${r.destination || r.prefix} (prefix ${r.prefix}), maxduration ${d.maxDuration ?? 0} s`,
    {
      fields: {
        ...base,
        route: 'gateways',
        number: d.number,
        gateway: d.candidates[0]!.name,
        gateways: d.candidates.map((c) => c.name).join(','),
        prefix: r.prefix,
        destination: r.destination,
        price: formatPrice(r.price),
        connectfee: formatAmount(r.connectfee),
        minduration: r.minduration,
        increment: r.increment,
        currency: r.currency,
        plan: d.quote.plan.name,
        credit: d.credit !== undefined ? formatAmount(d.credit) : '',
        maxduration: d.maxDuration ?? 0,
      },
      columns: ['order', 'gateway', 'host', 'port', 'transport', 'number'],
      rows: d.candidates.map((c, i) => ({
        order: i + 1,
        gateway: c.name,
        host: c.host,
        port: c.port,
        transport: c.transport,
        number: c.number,
      })),
    },
  );
}

export const routingCommands: CommandDef[] = [
  {
    name: 'addgateway',
    params: [...GATEWAY_FIELDS, ...REGISTRATION_FIELDS],
    level: 6,
    description:
      'add a SIP gateway (outbound trunk): name, host, port (5060), transport udp|tcp|tls, username/password ' +
      '(digest auth, stored encrypted), prefix (normalised numbers it serves, empty = all), strip (leading digits ' +
      'removed) and addprefix (prepended), priority (lower first, default 10), weight (share among equal priority, ' +
      'default 1), inbound_ip (addresses whose calls to DIDs are trusted), enabled (1); register=1 registers the ' +
      'trunk at host (REGISTER with the password, refreshed): register_expires (3600), register_user (the AOR user, ' +
      'default username), auth_user (digest user), realm (the only realm answered), register_contact (Contact user; ' +
      'INVITEs to it dial the To number); a host name without port is resolved by NAPTR/SRV (RFC 3263)',
    run: (ctx, p) =>
      guarded(async () => {
        const input = validateGatewayInput(p);
        const g = await ctx.services.routing.addGateway(input);
        if (g.registration.register) await ctx.services.trunks?.sync();
        ctx.services.log.info(
          {
            gateway: g.name,
            host: g.host,
            port: g.port,
            transport: g.transport,
            prefix: g.prefix,
            by: ctx.caller.user?.username,
          },
          'gateway added',
        );
        return ok(
          `gateway ${g.name} added (id ${g.id}, ${hostPort(g.host, g.port)}/${g.transport}, prefix ` +
            `${g.prefix || 'any'}, priority ${g.priority}, weight ${g.weight})`,
          {
            fields: gatewayRow(g),
          },
        );
      }),
  },
  {
    name: 'editgateway',
    params: ['id', ...GATEWAY_FIELDS, 'enabled', ...REGISTRATION_FIELDS],
    level: 6,
    description:
      'change a gateway: id (or its current name in name= when no id is given), then any addgateway parameter; ' +
      'what is not given stays, password not given keeps the stored one (password= empty removes it); checked as ' +
      'addgateway checks',
    run: (ctx, p) =>
      guarded(async () => {
        const key = (p.id ?? '').trim() || (p.name ?? '').trim();
        if (!key) return fail('id: which gateway to change (its id, or name= without id)', { legacyStatus: 421 });
        const routing = ctx.services.routing;
        const old = await routing.gateway(/^\d{1,10}$/.test(key) && p.id ? Number(key) : key);
        if (!old) return fail(`no gateway "${key.slice(0, 64)}"`, { legacyStatus: 404 });
        const { gateway, keepPassword } = validateGatewayEdit(old, p.id ? p : { ...p, name: undefined });
        const g = await routing.updateGateway(old.id, gateway, keepPassword);
        if (old.registration.register || g.registration.register) await ctx.services.trunks?.sync();
        ctx.services.log.info({ gateway: g.name, id: g.id, by: ctx.caller.user?.username }, 'gateway changed');
        return ok(
          `gateway ${g.name} changed (id ${g.id}, ${hostPort(g.host, g.port)}/${g.transport}, prefix ` +
            `${g.prefix || 'any'}, priority ${g.priority}, weight ${g.weight}${g.enabled ? '' : ', disabled'})`,
          { fields: gatewayRow(g) },
        );
      }),
  },
  {
    name: 'delgateway',
    params: ['name'],
    level: 6,
    description: 'delete a gateway by name (or id)',
    run: (ctx, p) =>
      guarded(async () => {
        const g = await ctx.services.routing.deleteGateway(p.name ?? p.id ?? '');
        // a registered trunk is unregistered (Expires: 0) before the answer
        if (g.registration.register) await ctx.services.trunks?.sync();
        ctx.services.log.info({ gateway: g.name, by: ctx.caller.user?.username }, 'gateway deleted');
        return ok(`gateway ${g.name} deleted`, { fields: { id: g.id, name: g.name } });
      }),
  },
  {
    name: 'gateways',
    params: [],
    level: 6,
    description:
      'list the SIP gateways (passwords are never shown, only whether one is set) with the state of their trunk ' +
      'registration (reg_status registered|registering|failed|standby, reg_cause, reg_expires granted, reg_next)',
    run: async (ctx) => {
      const list = await ctx.services.routing.gateways();
      const states = new Map((await ctx.services.trunks?.states())?.map((st) => [st.id, st]));
      return ok(`${list.length} gateway(s)${list.length ? ': ' + list.map((g) => g.name).join(',') : ''}`, {
        fields: { count: list.length },
        columns: GATEWAY_COLUMNS,
        rows: list.map((g) => gatewayRow(g, states.get(g.id))),
      });
    },
  },
  {
    name: 'routingtest',
    params: ['ip', 'caller', 'called'],
    level: 6,
    description:
      'the route a real call with these values would take, without placing it: ip (source address; a gateway ' +
      'inbound_ip means a trusted DID call), caller (username or caller number; default the API user), called (the ' +
      'dialled number or username); answers the route, the gateways in failover order and the rate',
    run: async (ctx, p) => {
      const s = ctx.services;
      const called = (p.called ?? p.bnum ?? '').trim();
      if (!called) return fail('called: the dialled number (or username) is missing', { legacyStatus: 421 });
      const ipRaw = (p.ip ?? '').trim();
      const ip = ipRaw ? normalizeIp(ipRaw) : '';
      if (ipRaw && !ip) return fail(`ip: "${ipRaw.slice(0, 60)}" is not an IP address`);
      const callerRaw = (p.caller ?? p.anum ?? '').trim();
      const routing = s.routing;
      const gw = ip ? await routing.gatewayForIp(ip) : undefined;
      let user: User | undefined;
      if (gw) {
        user = undefined; // a gateway's call: trusted, no account of the caller
      } else {
        user = await callerUser(ctx, callerRaw);
        if (!user) {
          return fail(
            callerRaw
              ? `caller: no user or caller number "${callerRaw.slice(0, 64)}"`
              : 'caller: the calling user (username) is missing',
            { legacyStatus: callerRaw ? 404 : 421 },
          );
        }
        const me = ctx.caller.user;
        if (me && user.id !== me.id && !isAdminType(me.type) && !(await s.users.isInSubtree(me.id, user.id))) {
          throw new ApiError(`caller: you may only test calls of your own account or users below you`, 403);
        }
      }
      const d = await routing.route({ caller: callerRaw || user?.username || '', called, fromIp: ip, user });
      const base: Record<string, string | number> = {
        ip,
        caller: callerRaw || user?.username || '',
        called,
        source: gw ? `gateway ${gw.name}` : `user ${user!.username}`,
      };
      return decisionAnswer(ctx, d, base);
    },
  },
];
