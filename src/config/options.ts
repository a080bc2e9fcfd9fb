/**
 * The global configuration options, by the names the Mizu API document uses.
 * One schema: each option has a type, a default and a one-line description; values arrive as strings
 * (config file, --set, reload) and are validated here, with an error that names the bad option.
 */
import { z } from 'zod';

import { bool, int, oneOf, str, ipList, nameList } from './kinds.js';
import { messagingOptions } from './messaging-options.js';
import { billingOptions } from './billing-options.js';
import { sipOptions } from './sip-options.js';

const apiOptions = {
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
} as const;

const maintenanceOptions = {
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
} as const;

const tlsOptions = {
  usetls: { schema: bool, def: 'false', doc: 'enable HTTPS / secure WebSocket / TLS lines on tlsport' },
  tlsport: { schema: int(0, 65535), def: '443', doc: 'TLS port' },
  tlscert: { schema: str, def: 'tls/cert.pem', doc: 'certificate (PEM), relative to the data dir' },
  tlskey: { schema: str, def: 'tls/key.pem', doc: 'private key (PEM), relative to the data dir' },
} as const;

const serverOptions = {
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
} as const;

const smsOptions = {
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
} as const;

const logsOptions = {
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

/**
 * The options by section: the `[section]` headers of the config file and the `module` of the settings table
 * (setini/getini, saveinifiles/loadinifiles). Every option belongs to exactly one section.
 */
export const optionSections = {
  api: apiOptions,
  billing: billingOptions,
  messaging: messagingOptions,
  sip: sipOptions,
  maintenance: maintenanceOptions,
  tls: tlsOptions,
  server: serverOptions,
  sms: smsOptions,
  logs: logsOptions,
} as const;

export type SectionName = keyof typeof optionSections;

export const optionSchemas = {
  ...apiOptions,
  ...billingOptions,
  ...messagingOptions,
  ...sipOptions,
  ...maintenanceOptions,
  ...tlsOptions,
  ...serverOptions,
  ...smsOptions,
  ...logsOptions,
} as const;

/** The section an option is written under. */
export function sectionOf(name: OptionName): SectionName {
  for (const [section, group] of Object.entries(optionSections)) if (name in group) return section as SectionName;
  throw new Error(`option ${name} has no section`);
}

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
