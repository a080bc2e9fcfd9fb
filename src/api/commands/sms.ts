/**
 * SMS commands: sms, sendsms, sendsmsunicode (the caller's account pays), asendsms (an admin's message, not
 * charged), smsstatus, and the SMPP gateways (addsmsgateway, delsmsgateway, smsgateways). The work is in
 * domain/messaging/sms (SmsService).
 */
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { mayOnOwner } from '../../domain/accounts/access.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { validateSmsGatewayInput, type SmsGateway } from '../../domain/messaging/sms/gateways.js';
import type { SmsEncoding } from '../../domain/messaging/sms/encoding.js';
import type { SmsRow } from '../../domain/messaging/sms/queue.js';

/** addsmsgateway's parameters in the documented order; smsgateways shows them between id and the state. */
const GATEWAY_PARAMS = [
  'name',
  'host',
  'port',
  'system_id',
  'password',
  'system_type',
  'bindmode',
  'prefix',
  'priority',
  'default_sender',
  'allowed_senders',
  'throughput',
  'window',
  'tls',
  'maxparts',
];
const GATEWAY_COLUMNS = ['id', ...GATEWAY_PARAMS, 'enabled', 'state', 'error'];

/** A gateway as the API shows it: never the password, only whether one is set; with its session's state. */
function gatewayRow(ctx: CommandContext, g: SmsGateway): Record<string, string | number> {
  const st = ctx.services.sms.link?.status(g.name);
  return {
    id: g.id,
    name: g.name,
    host: g.host,
    port: g.port,
    system_id: g.systemId,
    password: g.passwordEnc ? 'set' : '',
    system_type: g.systemType,
    bindmode: g.bindMode,
    prefix: g.prefixes.join(','),
    priority: g.priority,
    default_sender: g.defaultSender,
    allowed_senders: g.allowedSenders.join(','),
    throughput: g.throughput,
    window: g.window,
    tls: g.tls ? 1 : 0,
    maxparts: g.maxParts,
    enabled: g.enabled ? 1 : 0,
    state: g.enabled ? (st?.state ?? 'down') : 'disabled',
    error: st?.error ?? '',
  };
}

function send(encoding: SmsEncoding, operator: boolean) {
  return async (ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> => {
    const user = ctx.caller.user;
    if (!user) throw new ApiError('an authenticated account is needed to send SMS', 403);
    const to = (p.bnum ?? p.telnumber ?? '').trim();
    if (!to) return fail('bnum: the destination number is missing', { legacyStatus: 421 });
    const a = await ctx.services.sms.send({
      user,
      sender: p.anum ?? '',
      destination: to,
      text: p.txt ?? p.message ?? '',
      encoding,
      operator,
    });
    const price = a.cost ? `, charged ${formatAmount(a.cost)} ${a.currency}` : '';
    return ok(`SMS ${a.id} accepted: ${a.parts} part(s) ${a.encoding} to ${a.destination}${price}`, {
      fields: {
        id: a.id,
        state: 'accepted',
        destination: a.destination,
        encoding: a.encoding,
        parts: a.parts,
        cost: formatAmount(a.cost),
        currency: a.currency,
      },
    });
  };
}

const STATUS_COLUMNS = [
  'id',
  'destination',
  'sender',
  'state',
  'parts',
  'gateway',
  'attempts',
  'cost',
  'error',
  'created',
];

function statusRow(r: SmsRow): Record<string, string | number> {
  return {
    id: r.id,
    destination: r.destination,
    sender: r.sender,
    state: r.state,
    parts: r.parts,
    gateway: r.gateway,
    attempts: r.attempts,
    cost: formatAmount(r.cost),
    error: r.error,
    created: new Date(r.createdAt).toISOString(),
  };
}

export const smsCommands: CommandDef[] = [
  {
    name: 'sms',
    params: ['anum', 'bnum', 'txt'],
    level: 12,
    description:
      'send an SMS (GSM 7-bit; longer texts go as concatenated parts): anum the sender (one of your numbers, a ' +
      "sender the gateway allows, or empty for the gateway's default), bnum the destination, txt the text; answers " +
      'the message id at once (smsstatus tells its state); each part is charged at the tariff connect fee',
    run: send('gsm7', false),
  },
  {
    name: 'sendsms',
    params: ['telnumber', 'message'],
    fallbacks: { telnumber: ['bnum'] },
    level: 12,
    description: 'send an SMS (GSM 7-bit) to telnumber: like sms, with the default sender unless anum is given',
    run: send('gsm7', false),
  },
  {
    name: 'sendsmsunicode',
    params: ['telnumber', 'message'],
    fallbacks: { telnumber: ['bnum'] },
    level: 12,
    description: 'send an SMS in UCS-2 (any characters; 70 a message, 67 a part) to telnumber',
    run: send('ucs2', false),
  },
  {
    name: 'asendsms',
    params: ['telnumber', 'message'],
    fallbacks: { telnumber: ['bnum'] },
    level: 6,
    description:
      'send an SMS as the operator (admin): any sender (anum), not charged; GSM 7-bit, or UCS-2 with unicode=1',
    run: (ctx, p) => send(/^(1|true|yes)$/i.test(p.unicode ?? '') ? 'ucs2' : 'gsm7', true)(ctx, p),
  },
  {
    name: 'smsstatus',
    params: ['id'],
    level: 12,
    description:
      "the state of an SMS by id (accepted, submitting, submitted, delivered, failed), or without id the caller's " +
      'latest 50 messages',
    run: async (ctx, p) => {
      const user = ctx.caller.user;
      if (!user) throw new ApiError('an authenticated account is needed', 403);
      const q = ctx.services.sms.queue;
      const raw = (p.id ?? '').trim();
      if (!raw) {
        const rows = await q.recent(user.id, 50);
        return ok(`${rows.length} SMS`, {
          fields: { count: rows.length },
          columns: STATUS_COLUMNS,
          rows: rows.map(statusRow),
        });
      }
      if (!/^\d{1,12}$/.test(raw)) return fail(`id: "${raw.slice(0, 20)}" is not an SMS id`);
      const r = await q.byId(Number(raw));
      if (!r || (r.userid !== user.id && !(await mayOnOwner(ctx.services.users, user, 'see', r.userid))))
        return fail(`no SMS ${raw}`, { legacyStatus: 404 });
      const parts = await q.parts(r.id);
      return ok(`SMS ${r.id}: ${r.state}${r.error ? ` (${r.error})` : ''}`, {
        fields: { ...statusRow(r), messageids: parts.map((x) => x.messageId).join(',') },
        columns: ['part', 'gateway', 'messageid', 'state'],
        rows: parts.map((x) => ({ part: x.part + 1, gateway: x.gateway, messageid: x.messageId, state: x.state })),
      });
    },
  },
  {
    name: 'addsmsgateway',
    params: GATEWAY_PARAMS,
    level: 6,
    description:
      'add an SMPP gateway (SMSC): name, host, port (2775; 3550 with tls=1), system_id, password (stored encrypted), ' +
      'system_type, bindmode transmitter|receiver|transceiver (default), prefix (comma-separated destination ' +
      'prefixes, empty = all; longest first, then priority), priority (lower first, 10), default_sender, ' +
      'allowed_senders (comma list, x* a prefix), throughput (submits/s, 0 no limit), window (outstanding ' +
      'submit_sm, 10), tls, maxparts (0: smsmaxparts), enabled (1); the session binds at once',
    run: async (ctx, p) => {
      const g = await ctx.services.sms.addGateway(validateSmsGatewayInput(p));
      ctx.services.log.info(
        { smsgateway: g.name, host: g.host, port: g.port, by: ctx.caller.user?.username },
        'SMS gateway added',
      );
      return ok(`SMS gateway ${g.name} added (id ${g.id}, ${g.host}:${g.port}, ${g.bindMode})`, {
        fields: gatewayRow(ctx, g),
      });
    },
  },
  {
    name: 'delsmsgateway',
    params: ['name'],
    level: 6,
    description: 'delete an SMPP gateway by name (or id); its session unbinds',
    run: async (ctx, p) => {
      const g = await ctx.services.sms.deleteGateway(p.name ?? p.id ?? '');
      ctx.services.log.info({ smsgateway: g.name, by: ctx.caller.user?.username }, 'SMS gateway deleted');
      return ok(`SMS gateway ${g.name} deleted`, { fields: { id: g.id, name: g.name } });
    },
  },
  {
    name: 'smsgateways',
    params: [],
    level: 6,
    description:
      'list the SMPP gateways with the state of their session (bound, connecting, down, refused with the reason); ' +
      'passwords are never shown',
    run: async (ctx) => {
      const list = await ctx.services.sms.gateways();
      return ok(`${list.length} SMS gateway(s)${list.length ? ': ' + list.map((g) => g.name).join(',') : ''}`, {
        fields: { count: list.length },
        columns: GATEWAY_COLUMNS,
        rows: list.map((g) => gatewayRow(ctx, g)),
      });
    },
  },
];
