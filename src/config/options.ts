/**
 * The global configuration options, by the names the Mizu API document uses.
 * One schema: each option has a type, a default and a one-line description; values arrive as strings
 * (config file, --set, reload) and are validated here, with an error that names the bad option.
 */
import { z } from 'zod';

import { bool, int, oneOf, str, ipList, nameList } from './kinds.js';
import { messagingOptions } from './messaging-options.js';

export const optionSchemas = {
  // --- API gateway ---
  mainaport: { schema: int(0, 65535), def: '80', doc: 'API port for HTTP, WebSocket, TCP lines and UDP datagrams' },
  usemainaport: { schema: bool, def: 'true', doc: 'false disables the API listeners on mainaport' },
  apibindaddr: { schema: str, def: '0.0.0.0', doc: 'address the API listeners bind to' },
  apiv2key: { schema: str, def: '', doc: 'API key expected in authkey (empty: no key required)' },
  httpapikey: { schema: str, def: '', doc: 'old API key (xmapi key=…, also accepted as authkey)' },
  apiv2md5salt: {
    schema: str,
    def: '',
    doc: 'server salt in authmd5 = MD5("ck5Gp"+authid+authpwd+apiv2md5salt+authsalt)',
  },
  apiv2ipauth: {
    schema: ipList,
    def: '',
    doc: 'addresses allowed for APIs with req_ip=1 (local addresses always are)',
  },
  apiv2auth: {
    schema: oneOf(2, 4, 6),
    def: '2',
    doc: 'default req_user_mode: 2 user+pwd or pin, 4 user or pwd or pin, 6 user+pwd only',
  },
  trustediplist: {
    schema: ipList,
    def: '',
    doc: 'addresses trusted like localhost (bulk callers such as a web server)',
  },
  metricsallow: {
    schema: ipList,
    def: '',
    doc: 'addresses and ranges allowed to read /metrics and /health (loopback always is)',
  },
  trustlanip: { schema: bool, def: 'true', doc: 'trust private/LAN addresses' },
  serverhost: {
    schema: nameList,
    def: '',
    doc: 'host names this server answers as (HTTP Host check against DNS rebinding)',
  },
  httpstrictresponse: { schema: bool, def: 'false', doc: 'send the API code as the HTTP status' },
  enablejsonp: { schema: oneOf(0, 1, 2), def: '1', doc: 'JSONP: 0 off, 1 local pages only, 2 remote pages too' },
  httpapiencryptkey: { schema: str, def: '', doc: 'XOR key of encrypted requests (mcrfs / oenc1_)' },
  apimd5nosalt: {
    schema: bool,
    def: 'false',
    doc: 'accept authmd5 without authsalt (a static md5 token anyone who sees it can replay)',
  },
  apisaltwindow: {
    schema: int(1, 86400 * 7),
    def: '3600',
    doc: 'seconds a used authsalt is remembered (replays refused)',
  },
  webconsole: { schema: bool, def: 'true', doc: 'serve the web console at /console on the API ports' },
  consoleidle: {
    schema: int(60, 86400),
    def: '1800',
    doc: 'seconds a web console session lives without a request',
  },
  consolesession: {
    schema: int(60, 86400 * 7),
    def: '43200',
    doc: 'seconds a web console session lives at most after its log-in',
  },
  apilimitip: { schema: int(0, 10_000_000), def: '200', doc: 'API requests per second from one IP (0: unlimited)' },
  apilimituser: { schema: int(0, 10_000_000), def: '100', doc: 'API requests per second by one user (0: unlimited)' },
  apilimitglobal: { schema: int(0, 10_000_000), def: '20000', doc: 'API requests per second in all (0: unlimited)' },
  authfailban: {
    schema: int(0, 100000),
    def: '10',
    doc: 'authentication failures from one IP before it is banned (0: never)',
  },
  authfailwindow: { schema: int(1, 86400), def: '300', doc: 'seconds over which authentication failures are counted' },
  bantime: { schema: int(1, 86400 * 365), def: '900', doc: 'seconds an IP stays banned' },
  apiheadertimeout: {
    schema: int(1, 3600),
    def: '15',
    doc: 'seconds an API client has to send a request line and headers (HTTP) or a line (raw TCP); then closed',
  },
  apirequesttimeout: {
    schema: int(1, 3600),
    def: '30',
    doc: 'seconds an API client has to send a whole HTTP request, body included; then closed',
  },
  maxrequestsize: { schema: int(256, 64 * 1024 * 1024), def: '1048576', doc: 'largest API request body in bytes' },
  customsqltimeout: { schema: int(50, 600000), def: '5000', doc: 'milliseconds a custom SQL API query may run' },
  publicsignup: { schema: bool, def: 'false', doc: 'allow newuseru (public sign-up)' },
  // --- accounts, billing, rating, numbers ---
  internationalprefix: {
    schema: str,
    def: '00',
    doc: 'dialled prefix for international numbers (normalised to E.164 digits)',
  },
  nationalprefix: { schema: str, def: '0', doc: 'dialled prefix for national numbers' },
  defaultcountrycode: {
    schema: str,
    def: '',
    doc: 'country calling code for national numbers of users without a country (e.g. 1, 36)',
  },
  callbackaccessnumber: {
    schema: str,
    def: '',
    doc: 'the number users call for callback: asks for a destination, refuses 486, calls back',
  },
  accessnumber: {
    schema: str,
    def: '',
    doc:
      'access numbers (DIDs, comma separated): a call to one asks for a PIN (unless the caller is known) and a ' +
      'number to call',
  },
  ivrtimeout: { schema: int(1, 120), def: '10', doc: 'IVR: seconds to wait for the first key of a PIN or number' },
  ivrinterdigit: { schema: int(1, 60), def: '5', doc: 'IVR: seconds without a key that end a PIN or number' },
  ivrpintries: { schema: int(1, 10), def: '3', doc: 'IVR: wrong PINs (access number, room PIN) before goodbye' },
  blockedprefixes: {
    schema: str.transform((v, ctx) => {
      const list = v
        .split(/[\s,;]+/)
        .filter(Boolean)
        .map((x) => x.replace(/^\+/, ''));
      const bad = list.find((x) => !/^\d{1,32}$/.test(x));
      if (bad !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${bad}" is not a number prefix (digits of the international number, no +)`,
        });
        return z.NEVER;
      }
      return list;
    }),
    def: '',
    doc:
      'destinations (international number prefixes, comma separated) that calls may not reach: refused 403 ' +
      'with a CDR',
  },
  numberlocktime: {
    schema: int(10, 86400 * 30),
    def: '900',
    doc: 'seconds a number reserved by lockphonenumber stays locked',
  },
  confroomfirst: {
    schema: int(1, 99_999_999),
    def: '8000',
    doc: 'first conference room number handed out by getconfroom',
  },
  confmaxparticipants: {
    schema: int(1, 1000),
    def: '20',
    doc: 'participants of one conference room at most (the next caller gets 486 Busy Here)',
  },
  cardprocessorurl: {
    schema: str,
    def: '',
    doc: 'HTTP(S) endpoint of the card processor for cccharge (empty: cccharge disabled)',
  },
  cardprocessorkey: { schema: str, def: '', doc: 'API key sent to the card processor' },
  dbmaxrows: { schema: int(1, 100000), def: '100', doc: 'most rows the db command answers' },
  ...messagingOptions,
  // --- SIP ---
  usesip: { schema: bool, def: 'true', doc: 'run the SIP stack' },
  sipshowversion: {
    schema: bool,
    def: 'false',
    doc: 'Server and User-Agent headers name the exact version (voxswitch/X.Y.Z); off: only "voxswitch"',
  },
  sipport: { schema: int(0, 65535), def: '5060', doc: 'SIP port for UDP and TCP' },
  siptlsport: { schema: int(0, 65535), def: '5061', doc: 'SIP over TLS port (used when usetls is on)' },
  sipwsport: {
    schema: int(0, 65535),
    def: '0',
    doc:
      'SIP over WebSocket port (RFC 7118): plain WebSocket, or secure WebSocket instead when usetls is on; ' +
      '0 disables',
  },
  sipbindaddr: { schema: str, def: '0.0.0.0', doc: 'address the SIP listeners bind to' },
  sipdomain: { schema: str, def: '', doc: 'SIP domain/realm (empty: the address the request was sent to)' },
  sipmaxmessage: { schema: int(1024, 1_048_576), def: '65535', doc: 'largest SIP message in bytes' },
  sipmaxconnections: { schema: int(1, 1_000_000), def: '10000', doc: 'most open SIP TCP/TLS/WS connections' },
  sipmaxconnperip: { schema: int(1, 1_000_000), def: '100', doc: 'most SIP TCP/TLS/WS connections from one address' },
  sipminexpires: { schema: int(1, 86400), def: '60', doc: 'Min-Expires for REGISTER and SUBSCRIBE' },
  sipmaxexpires: { schema: int(60, 86400 * 7), def: '3600', doc: 'longest registration/subscription granted' },
  sipnoncettl: { schema: int(5, 3600), def: '300', doc: 'seconds a digest nonce is valid' },
  sipdigest: {
    schema: str.transform((v, ctx) => {
      const list = v
        .split(/[\s,]+/)
        .filter(Boolean)
        .map((a) => a.toUpperCase());
      if (!list.length || list.some((a) => a !== 'MD5' && a !== 'SHA-256')) {
        ctx.addIssue({ code: 'custom', message: `expected MD5 and/or SHA-256 (comma separated), got "${v}"` });
        return z.NEVER;
      }
      return list as Array<'MD5' | 'SHA-256'>;
    }),
    def: 'MD5',
    doc: 'digest algorithms offered in challenges, in order (SHA-256 answers are always accepted)',
  },
  sessionexpires: {
    schema: int(0, 86400),
    def: '1800',
    doc:
      'RFC 4028 session interval (s) offered to and granted on each call leg; a leg not refreshed in time ends ' +
      'the call (0: no session timers)',
  },
  minse: {
    schema: int(1, 86400),
    def: '90',
    doc: 'RFC 4028 Min-SE (s): smaller Session-Expires get 422 (RFC minimum 90; smaller values for tests only)',
  },
  sipapi: { schema: bool, def: 'false', doc: 'answer API requests carried in SIP (X-MVAPI header in MESSAGE/OPTIONS)' },
  pinless: {
    schema: z.enum(['off', 'gateways']),
    def: 'gateways',
    doc:
      'pin-less calling: a call from a gateway inbound_ip whose caller number is a CLI of an account (cli) is ' +
      'placed and billed as that account (gateways), or never (off)',
  },
  rtprelay: {
    schema: z.enum(['off', 'nat', 'always']),
    def: 'nat',
    doc: 'RTP relay: off (media end to end), nat (relay when a party is behind NAT), always',
  },
  rtpportmin: { schema: int(1024, 65534), def: '20000', doc: 'lowest UDP port of the RTP relay' },
  rtpportmax: { schema: int(1025, 65535), def: '30000', doc: 'highest UDP port of the RTP relay' },
  rtpaddress: { schema: str, def: '', doc: 'address the RTP relay writes into SDP (empty: the SIP local address)' },
  rtptimeout: {
    schema: int(0, 86400),
    def: '60',
    doc: 'seconds without RTP from a sending party before a relayed call is ended (0: never)',
  },
  // --- backups and maintenance ---
  backupkeep: { schema: int(1, 1000), def: '7', doc: 'backups kept in <datadir>/backups (the oldest go first)' },
  backuptarget: {
    schema: str,
    def: '',
    doc: 'the "second server": a folder (e.g. a mount of another host) each backup is also copied to (empty: none)',
  },
  cdrretentiondays: {
    schema: int(0, 36500),
    def: '0',
    doc: 'dailymaint deletes CDRs that ended more than this many days ago (0: keep them all)',
  },
  jobretentiondays: {
    schema: int(1, 36500),
    def: '90',
    doc: 'monthlymaint deletes maintenance run records and reports older than this many days',
  },
  lowcredit: {
    schema: z.union([z.number(), z.string()]).transform((v, ctx) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) {
        ctx.addIssue({ code: 'custom', message: `expected a non-negative amount, got "${v}"` });
        return z.NEVER;
      }
      return n;
    }),
    def: '1',
    doc: 'accounts with less credit than this (in their currency) are listed by checkcredits and dailyreport',
  },
  usemaint: { schema: bool, def: 'true', doc: 'run hourlymaint/dailymaint/weeklymaint/monthlymaint on their schedule' },
  servicerstwait: {
    schema: int(0, 86400),
    def: '300',
    doc: 'seconds servicerst waits for live calls to end before it restarts (the calls left are ended and billed)',
  },
  // --- TLS ---
  usetls: { schema: bool, def: 'false', doc: 'enable HTTPS / secure WebSocket / TLS lines on tlsport' },
  tlsport: { schema: int(0, 65535), def: '443', doc: 'TLS port' },
  tlscert: { schema: str, def: 'tls/cert.pem', doc: 'certificate (PEM), relative to the data dir' },
  tlskey: { schema: str, def: 'tls/key.pem', doc: 'private key (PEM), relative to the data dir' },
  // --- storage, logs ---
  webfiles: {
    schema: str,
    def: '',
    doc: 'folder of pgetfile/pputfile (the web file storage; empty: <datadir>/www)',
  },
  filemaxsize: {
    schema: int(1, 256 * 1024 * 1024),
    def: '10485760',
    doc: 'largest file getfile/putfile/pgetfile/pputfile/file read or write, in bytes',
  },
  dburl: { schema: str, def: '', doc: 'database: empty for SQLite in the data dir, or postgres://…' },
  redisurl: {
    schema: str.refine((v) => v === '' || /^rediss?:\/\//.test(v), { message: 'expected empty or redis://…' }),
    def: '',
    doc: 'Redis for state shared by processes and nodes, redis://host:port (empty: in-process; read at start)',
  },
  nodeid: {
    schema: str,
    def: '',
    doc: 'name of this node in shared state and logs (empty: the host name; read at start)',
  },
  siprelayport: {
    schema: int(0, 65535),
    def: '0',
    doc:
      'UDP port of the SIP relay between nodes on sipbindaddr (0: off; needs redisurl; set on every node): a phone ' +
      'on a TCP/TLS/WebSocket connection of one node is reached from the others (read at start)',
  },
  dnsservers: {
    schema: str.transform((v, ctx) => {
      const items = v.split(/[\s,;]+/).filter(Boolean);
      for (const it of items)
        if (!/^(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9a-fA-F:]+\](:\d{1,5})?|[0-9a-fA-F:]+)$/.test(it)) {
          ctx.addIssue({ code: 'custom', message: `"${it}" is not ip, ip:port or [ipv6]:port` });
          return z.NEVER;
        }
      return items;
    }),
    def: '',
    doc:
      'DNS servers asked for gateway host names (RFC 3263 NAPTR/SRV/A/AAAA), as ip or ip:port, comma separated ' +
      "(empty: the system's resolver)",
  },
  trunkretry: {
    schema: int(1, 3600),
    def: '30',
    doc:
      'seconds before a failed trunk registration is tried again; doubled on each failure up to trunkretrymax, ' +
      'with jitter',
  },
  trunkretrymax: { schema: int(1, 86400), def: '600', doc: 'longest wait between trunk registration attempts' },
  workers: {
    schema: int(0, 1024),
    def: '0',
    doc:
      'processes sharing the API and SIP ports (serve --workers): 0 is the number of cores with redisurl and ' +
      'PostgreSQL, else 1; more than 1 needs both (read at start)',
  },
  overloaddelay: {
    schema: int(0, 60000),
    def: '100',
    doc:
      'event-loop delay (ms, mean of each 250 ms window) past which, two windows in a row, new INVITE/REGISTER get ' +
      '503 + Retry-After and new API requests an ERROR; in-dialog requests always pass (0: never refuse)',
  },
  overloadload: {
    schema: int(0, 100),
    def: '0',
    doc:
      'target event-loop utilisation (%) of the rate control of new INVITE/REGISTER: past it their rate is held ' +
      'to what the process serves at the target and the rest gets 503 + Retry-After (0: off; 95 is the value measured)',
  },
  overloadqueue: {
    schema: int(0, 65536),
    def: '4096',
    doc:
      'KB waiting in the kernel receive buffer of the SIP UDP socket (Linux, read every 20 ms): three readings ' +
      'in a row at or past it (within 1 s of the last spell: one past half of it) and new INVITE/REGISTER get ' +
      '503 + Retry-After until it is down to a quarter; an INVITE/REGISTER answering our challenge and in-dialog ' +
      'requests pass (0: off; default 4096)',
  },
  overloadminrate: {
    schema: int(1, 1_000_000),
    def: '20',
    doc: 'lowest rate (new INVITE/REGISTER per second) the overload rate control goes down to',
  },
  // --- SMS (SMPP gateways: addsmsgateway) ---
  smsmaxparts: {
    schema: int(1, 255),
    def: '6',
    doc: 'most parts of one concatenated SMS (153 GSM / 67 UCS-2 characters a part); longer messages are refused',
  },
  smsrefundfailed: {
    schema: bool,
    def: 'false',
    doc: 'refund the charge of an SMS that fails for good (an SMSC refusal, a failed receipt, retries exhausted)',
  },
  smsmaxattempts: {
    schema: int(1, 1000),
    def: '10',
    doc: 'submission attempts of an SMS (no bind, throttled, queue full) before it fails',
  },
  smsretrydelay: {
    schema: int(10, 3_600_000),
    def: '5000',
    doc: 'ms before the first retry of an SMS after a temporary failure (doubling each time, at most 10 min)',
  },
  smsmocharge: {
    schema: bool,
    def: 'true',
    doc:
      'charge an incoming SMS to a user (to their DID) like a sent one: the connectfee of the row of their own ' +
      'tariff plan for the sender number, per part (false: incoming SMS are free)',
  },
  smsmonocredit: {
    schema: z.enum(['deliver', 'reject']),
    def: 'deliver',
    doc:
      'an incoming SMS whose receiver cannot pay it: deliver (free, logged) or reject (the SMSC gets ' +
      'ESME_RX_P_APPN and does not retry)',
  },
  smsmodedupe: {
    schema: int(0, 7 * 86400),
    def: '600',
    doc:
      'seconds in which an incoming SMS with the same gateway, sender, number, parts and text counts as a ' +
      'redelivery by the SMSC: not charged nor delivered again (0: every copy is new)',
  },
  smsenquirelink: {
    schema: int(1, 3600),
    def: '30',
    doc: 'seconds between enquire_link keepalives of each SMPP session (a missing answer drops and rebinds it)',
  },
  loglevel: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    def: 'info',
    doc: 'log level of every log area (main, sip, tcp, cdr) unless loglevels names it',
  },
  loglevels: {
    schema: z.string().regex(/^(\s*(main|sip|tcp|cdr)\s*=\s*(fatal|error|warn|info|debug|trace|silent)\s*(,|$))*$/),
    def: '',
    doc: 'per-area log levels, e.g. sip=debug,tcp=warn (setloglevel changes them at run time)',
  },
  logdir: { schema: str, def: '', doc: 'folder of the log files (empty: <datadir>/logs)' },
  logmaxsize: { schema: int(1, 102400), def: '50', doc: 'MB at which a log file is rotated' },
  logmaxfiles: { schema: int(1, 1000), def: '10', doc: 'rotated files kept per log area (<area>.log.1 … .N)' },
  logrotate: {
    schema: z.string().regex(/^$|^\d+[smhd]$/),
    def: '1d',
    doc: 'also rotate the log files at this interval (30m, 12h, 1d; empty: by size only)',
  },
} as const;

export type OptionName = keyof typeof optionSchemas;
export type Options = { [K in OptionName]: z.output<(typeof optionSchemas)[K]['schema']> };

export function isOptionName(name: string): name is OptionName {
  return Object.prototype.hasOwnProperty.call(optionSchemas, name);
}

export class ConfigError extends Error {}

/** Validates raw string values (by option name) into typed options; unknown or bad options throw ConfigError. */
export function parseOptions(raw: Record<string, string>): Options {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const name of Object.keys(raw)) {
    if (!isOptionName(name)) errors.push(`unknown option "${name}"`);
  }
  for (const [name, spec] of Object.entries(optionSchemas)) {
    const value = raw[name] ?? spec.def;
    const r = (spec.schema as z.ZodType).safeParse(value);
    if (r.success) out[name] = r.data;
    else errors.push(`option "${name}": ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (errors.length) throw new ConfigError(errors.join('\n'));
  return out as Options;
}
