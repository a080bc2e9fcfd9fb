/** SMS gateway (SMSC) input validation, route order and sender rules (pure functions, unit-tested). */
import { isIP } from 'node:net';
import { DomainError } from '../../errors.js';

export const BIND_MODES = ['transmitter', 'receiver', 'transceiver'] as const;
export type BindMode = (typeof BIND_MODES)[number];

export interface SmsGateway {
  id: number;
  name: string;
  host: string;
  port: number;
  systemId: string;
  /** encrypted with the server key ('' = no password) */
  passwordEnc: string;
  systemType: string;
  bindMode: BindMode;
  /** destination prefixes (normalised digits); empty = any destination */
  prefixes: string[];
  priority: number;
  defaultSender: string;
  /** exact senders, or prefixes ending in '*'; empty = any sender the user may use */
  allowedSenders: string[];
  /** submit_sm per second; 0 = no limit */
  throughput: number;
  window: number;
  tls: boolean;
  /** most parts of one message on this gateway (0: the smsmaxparts option) */
  maxParts: number;
  enabled: boolean;
}

export interface NewSmsGateway extends Omit<SmsGateway, 'id' | 'passwordEnc'> {
  password: string;
}

/** Bad SMS gateway input or a refused gateway operation (legacyStatus 421 missing, 404 unknown, 412 otherwise). */
export class SmsGatewayError extends DomainError {
  constructor(message: string, legacyStatus = 412) {
    super(message, legacyStatus === 404 ? 'notfound' : 'input', { legacyStatus });
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOST_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$/;
const PRINTABLE_RE = /^[\x20-\x7e]*$/;
/** An SMPP source address: up to 20 characters (digits with an optional +, or alphanumeric up to 11). */
export const SENDER_RE = /^(\+?\d{1,20}|[A-Za-z0-9 ._-]{1,11})$/;

function intIn(v: string | undefined, name: string, min: number, max: number, def: number): number {
  if (v === undefined || v.trim() === '') return def;
  const t = v.trim();
  if (!/^\d{1,10}$/.test(t) || Number(t) < min || Number(t) > max)
    throw new SmsGatewayError(`${name}: expected a whole number from ${min} to ${max}, got "${t.slice(0, 40)}"`);
  return Number(t);
}

function flag(v: string | undefined, name: string, def: boolean): boolean {
  const s = (v ?? '').trim().toLowerCase();
  if (s === '') return def;
  if (/^(1|true|yes|on)$/.test(s)) return true;
  if (/^(0|false|no|off)$/.test(s)) return false;
  throw new SmsGatewayError(`${name}: expected 1 or 0, got "${s.slice(0, 20)}"`);
}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Validates addsmsgateway's raw parameters into a NewSmsGateway; throws SmsGatewayError. */
export function validateSmsGatewayInput(p: Record<string, string | undefined>): NewSmsGateway {
  const name = (p.name ?? '').trim();
  if (!name) throw new SmsGatewayError('name: the SMS gateway name is missing', 421);
  if (!NAME_RE.test(name))
    throw new SmsGatewayError('name: 1-64 characters of letters, digits and _.- starting with a letter or digit');
  let host = (p.host ?? '').trim();
  if (!host) throw new SmsGatewayError('host: the SMSC address (IP or host name) is missing', 421);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!isIP(host) && !HOST_RE.test(host))
    throw new SmsGatewayError(`host: "${host.slice(0, 60)}" is neither an IP address nor a host name`);
  const tls = flag(p.tls, 'tls', false);
  const port = intIn(p.port, 'port', 1, 65535, tls ? 3550 : 2775);
  const systemId = (p.system_id ?? p.systemid ?? p.username ?? '').trim();
  if (!systemId) throw new SmsGatewayError('system_id: the SMPP system_id (account at the SMSC) is missing', 421);
  if (systemId.length > 15 || !PRINTABLE_RE.test(systemId))
    throw new SmsGatewayError('system_id: at most 15 printable characters (SMPP 3.4)');
  const password = p.password ?? '';
  if (password.length > 8 || !PRINTABLE_RE.test(password))
    throw new SmsGatewayError('password: at most 8 printable characters (SMPP 3.4)');
  const systemType = (p.system_type ?? p.systemtype ?? '').trim();
  if (systemType.length > 12 || !PRINTABLE_RE.test(systemType))
    throw new SmsGatewayError('system_type: at most 12 printable characters');
  const mode = (p.bindmode ?? p.bind ?? '').trim().toLowerCase() || 'transceiver';
  if (!(BIND_MODES as readonly string[]).includes(mode))
    throw new SmsGatewayError(`bindmode: expected transmitter, receiver or transceiver, got "${mode.slice(0, 20)}"`);
  const prefixes = list(p.prefix ?? p.prefixes).map((x) => x.replace(/^\+/, ''));
  for (const x of prefixes)
    if (!/^\d{1,32}$/.test(x))
      throw new SmsGatewayError(`prefix: digits of normalised destination numbers (no +), got "${x.slice(0, 40)}"`);
  if (prefixes.join(',').length > 512) throw new SmsGatewayError('prefix: at most 512 characters in all');
  const defaultSender = (p.default_sender ?? p.sender ?? '').trim();
  if (defaultSender && !SENDER_RE.test(defaultSender))
    throw new SmsGatewayError('default_sender: up to 20 digits (optional +) or up to 11 letters and digits');
  const allowedSenders = list(p.allowed_senders);
  for (const s of allowedSenders)
    if (!SENDER_RE.test(s.endsWith('*') ? s.slice(0, -1) || 'x' : s))
      throw new SmsGatewayError(`allowed_senders: "${s.slice(0, 30)}" is not a sender (or sender prefix*)`);
  if (allowedSenders.join(',').length > 512) throw new SmsGatewayError('allowed_senders: at most 512 characters');
  return {
    name,
    host,
    port,
    systemId,
    password,
    systemType,
    bindMode: mode as BindMode,
    prefixes,
    priority: intIn(p.priority, 'priority', 0, 1000, 10),
    defaultSender,
    allowedSenders,
    throughput: intIn(p.throughput, 'throughput', 0, 100000, 0),
    window: intIn(p.window, 'window', 1, 1000, 10),
    tls,
    maxParts: intIn(p.maxparts, 'maxparts', 0, 255, 0),
    enabled: flag(p.enabled, 'enabled', true),
  };
}

/** The longest of a gateway's prefixes that starts `number` ('' for a gateway of any destination), or -1. */
export function matchLength(g: Pick<SmsGateway, 'prefixes'>, number: string): number {
  if (g.prefixes.length === 0) return 0;
  let best = -1;
  for (const p of g.prefixes) if (number.startsWith(p) && p.length > best) best = p.length;
  return best;
}

/** The enabled gateways that serve `number`, in failover order: longest matching prefix, then priority, then id. */
export function orderSmsGateways<G extends SmsGateway>(gws: readonly G[], number: string): G[] {
  return gws
    .filter((g) => g.enabled && g.bindMode !== 'receiver' && matchLength(g, number) >= 0)
    .map((g) => ({ g, m: matchLength(g, number) }))
    .sort((a, b) => b.m - a.m || a.g.priority - b.g.priority || a.g.id - b.g.id)
    .map((x) => x.g);
}

/** Whether a gateway's sender list admits `sender` ('' list: every sender). */
export function senderAllowed(g: Pick<SmsGateway, 'allowedSenders'>, sender: string): boolean {
  if (g.allowedSenders.length === 0) return true;
  return g.allowedSenders.some((a) => (a.endsWith('*') ? sender.startsWith(a.slice(0, -1)) : a === sender));
}
