/** Table types for the query builder. Money columns are integers in micro-units (1/1,000,000 of the currency). */
import type { ColumnType, Generated } from 'kysely';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_enc: string;
  type: number;
  parentid: number;
  name: string;
  email: string;
  phone: string;
  currency: string;
  country: string;
  address: string;
  pin: string | null;
  did: string | null;
  credit: number;
  enabled: number;
  created_at: number;
  /** Tariff plan (tb_tariffplans.id); NULL inherits from the parent chain, then the plan named "default". */
  tariffid: number | null;
  forgot_question: string | null;
  forgot_answer_enc: string | null;
  /** 1: the account's phones may transfer calls by REFER (src/sip/calls/transfer.ts); 0: a REFER gets 403. */
  allowtransfer: Generated<number>;
}

export interface ApiTable {
  id: Generated<number>;
  fname: string;
  req_key: number | null;
  req_ip: number | null;
  req_user: number | null;
  req_user_mode: number | null;
  customsql: string | null;
}

export interface LedgerTable {
  id: Generated<number>;
  userid: number;
  amount: number;
  balance_after: number;
  currency: string;
  reason: string;
  ref: string;
  actor: number;
  created_at: number;
}

export interface BansTable {
  ip: string;
  reason: string;
  until: number;
  created_at: number;
}

/** Money columns (price, connectfee, value, cost) are micro-units; durations are seconds; times are epoch ms. */
export interface TariffPlansTable {
  id: Generated<number>;
  name: string;
  currency: string;
  created_at: number;
}

export interface TariffsTable {
  id: Generated<number>;
  planid: number;
  prefix: string;
  destination: string;
  /** per minute */
  price: number;
  connectfee: number;
  minduration: number;
  increment: number;
  currency: string;
  valid_from: number | null;
  valid_to: number | null;
}

export interface PinBatchesTable {
  id: Generated<number>;
  name: string;
  count: number;
  value: number;
  currency: string;
  expires_at: number | null;
  created_by: number;
  created_at: number;
}

/** Recharge PINs, stored as SHA-256 of the PIN (the PIN itself is shown once, when the batch is made). */
export interface PinsTable {
  id: Generated<number>;
  pin_hash: string;
  batchid: number;
  value: number;
  currency: string;
  expires_at: number | null;
  used_at: number | null;
  used_by: number | null;
  created_at: number;
}

/** DID pool: status free | locked (reserved until locked_until) | assigned. */
export interface NumbersTable {
  id: Generated<number>;
  number: string;
  userid: number;
  status: string;
  locked_until: number | null;
  created_at: number;
}

/** Pin-less caller numbers (ANI) of accounts. */
export interface CliTable {
  id: Generated<number>;
  userid: number;
  number: string;
  created_at: number;
}

export interface CallbackNumbersTable {
  id: Generated<number>;
  userid: number;
  number: string;
  created_at: number;
}

/** Forwarding rules applied by the SIP core: unconditional, on busy, on no answer ('' = none). */
export interface CallForwardTable {
  userid: number;
  always: string;
  busy: string;
  noanswer: string;
  updated_at: number;
}

export interface ConfRoomsTable {
  id: Generated<number>;
  userid: number;
  room: string;
  created_at: number;
  /** the room's PIN, asked before joining (NULL: none) */
  pin: ColumnType<string | null, string | null | undefined, string | null>;
}

/** One row per call (and per leg of a callback/p2p: leg 'a'/'b'; '' for a simple call). */
export interface CdrsTable {
  id: Generated<number>;
  callid: string;
  caller: string;
  callee: string;
  userid: number;
  route: string;
  start_at: number;
  connect_at: number | null;
  end_at: number;
  duration: number;
  billed: number;
  cost: number;
  currency: string;
  reason: string;
  leg: string;
  created_at: number;
}

/** Instant messages kept for offline users until delivered (delivered_at set once, never twice). */
export interface IMessagesTable {
  id: Generated<number>;
  fromuser: string;
  touser: string;
  body: string;
  content_type: string;
  created_at: number;
  delivered_at: number | null;
}

/** Presence set by presence_set or SIP PUBLISH. */
export interface PresenceTable {
  userid: number;
  status: string;
  pidf: string | null;
  updated_at: number;
}

/** Outbound/inbound SIP gateways and their prefix rules (routing: longest prefix, then priority, then weight). */
export interface GatewaysTable {
  id: Generated<number>;
  name: string;
  host: string;
  port: number;
  transport: string;
  username: string;
  password_enc: string;
  /** called-number prefix this gateway serves ('' = any) */
  prefix: string;
  /** digits stripped from the front of the called number before sending */
  strip: number;
  /** digits added in front after stripping */
  addprefix: string;
  priority: number;
  weight: number;
  /** calls from this address are trusted as coming from the gateway (DID inbound) */
  inbound_ip: string;
  enabled: number;
  created_at: number;
  /** 1: voxswitch registers at the gateway (trunk registration) */
  register: Generated<number>;
  /** the Expires asked for in the trunk's REGISTER (seconds) */
  register_expires: Generated<number>;
  /** the registration's address-of-record user ('' = username) */
  register_user: Generated<string>;
  /** the digest user name ('' = register_user, else username) */
  auth_user: Generated<string>;
  /** the digest realm the credentials are for ('' = any realm the registrar names) */
  realm: Generated<string>;
  /** the Contact user registered ('' = the AOR user); INVITEs to it are the trunk's inbound calls */
  register_contact: Generated<string>;
  /** RFC 3263 look-ups of a host name: '' A/AAAA only, 'srv', 'naptr' */
  dns: Generated<string>;
}

/** Calls in progress, persisted at each state change so a crash leaves nothing unbilled (recovered at start). */
export interface LiveCallsTable {
  callid: string;
  userid: number;
  caller: string;
  callee: string;
  route: string;
  leg: string;
  state: string;
  start_at: number;
  connect_at: number | null;
  maxduration: number;
  reserved: number;
  rate_json: string;
  updated_at: number;
  /** the node that owns the call (recovery takes its own rows, or those a dead node stopped refreshing) */
  node: ColumnType<string, string | undefined, string>;
}

/** Credit held by a live call leg (src/storage/reservations.ts); released when its CDR is charged. */
export interface ReservationsTable {
  id: Generated<number>;
  userid: number;
  callid: string;
  leg: string;
  /** micro-units */
  amount: number;
  node: string;
  created_at: number;
  /** refreshed by the owning node's heartbeat; past it, another node may recover the call */
  expires_at: number;
}

/** SMPP connections to SMSCs (addsmsgateway); the password is encrypted with the server key. */
export interface SmsGatewaysTable {
  id: Generated<number>;
  name: string;
  host: string;
  port: number;
  system_id: string;
  password_enc: string;
  system_type: string;
  /** transmitter | receiver | transceiver */
  bindmode: string;
  /** comma-separated destination prefixes ('' = any) */
  prefixes: string;
  priority: number;
  default_sender: string;
  /** comma-separated senders this SMSC accepts (an entry ending in * is a prefix; '' = any the user may use) */
  allowed_senders: string;
  /** submit_sm per second (0: no limit) */
  throughput: number;
  /** submit_sm outstanding at once */
  window_size: number;
  tls: number;
  maxparts: number;
  enabled: number;
  created_at: number;
}

/** The durable outbound SMS queue: one row per message (accepted → submitting → submitted → delivered/failed). */
export interface SmsTable {
  id: Generated<number>;
  userid: number;
  sender: string;
  destination: string;
  text: string;
  /** gsm7 | ucs2 */
  encoding: string;
  parts: number;
  /** parts whose submit_sm write has begun (marked before the write: the at-most-once mark) */
  sent: Generated<number>;
  /** parts settled: acknowledged by the SMSC, refused, or left unconfirmed by a crash (never resent) */
  acked: Generated<number>;
  /** 8-bit concatenation reference (0-255) shared by the parts */
  ref: number;
  /** the gateway of the last submission attempt ('' before any) */
  gateway: Generated<string>;
  state: string;
  attempts: Generated<number>;
  next_try_at: number;
  /** the process holding the row in `submitting`, and until when */
  owner: Generated<string>;
  lease_until: Generated<number>;
  error: Generated<string>;
  /** micro-units charged (once, at acceptance) */
  cost: number;
  refunded: Generated<number>;
  created_at: number;
  updated_at: number;
}

/** One submitted part of an SMS: the SMSC's message id, matched by delivery receipts. */
export interface SmsPartsTable {
  smsid: number;
  part: number;
  gateway: string;
  message_id: string;
  /** submitted | delivered | failed */
  state: string;
  updated_at: number;
}

/** A mobile-originated SMS to a user (migration 0022): its MO charge and its outcome. */
export interface SmsMoTable {
  id: Generated<number>;
  gateway: string;
  /** SHA-256 (hex) of gateway, sender, number, concatenation reference and text: a redelivery has the same */
  dedupe: string;
  userid: number;
  sender: string;
  destination: string;
  parts: number;
  /** micro-units charged (0: free, not rated, or credit short with smsmonocredit=deliver) */
  cost: ColumnType<number, number | undefined, number>;
  /** delivering | accepted (charged, its delivery failed) | delivered | rejected | undelivered (refunded) */
  state: string;
  note: ColumnType<string, string | undefined, string>;
  created_at: number;
  updated_at: number;
}

/** A column with a default: optional on insert. */
type Def<T> = ColumnType<T, T | undefined, T>;

/** The e-mail queue (domain/mail): queued → sending → sent | failed; temporary errors back to queued later. */
export interface MailTable {
  id: Generated<number>;
  userid: Def<number>;
  from_addr: string;
  to_addr: string;
  subject: Def<string>;
  body: Def<string>;
  /** JSON {path, name, type} of a file attached from the confined file storage (fax by e-mail), or NULL */
  attachment: ColumnType<string | null, string | null | undefined, string | null>;
  /** what the message belongs to ("fax:12"), '' for a plain e-mail */
  ref: Def<string>;
  state: string;
  attempts: Def<number>;
  next_try_at: number;
  error: Def<string>;
  message_id: Def<string>;
  created_at: number;
  updated_at: number;
}

/** Faxes (domain/fax): queued → sending → sent | failed; charged once when accepted (ledger ref fax:<id>). */
export interface FaxTable {
  id: Generated<number>;
  userid: Def<number>;
  from_num: Def<string>;
  to_num: string;
  filename: string;
  pages: Def<number>;
  cost: Def<number>;
  currency: Def<string>;
  mode: string;
  state: string;
  attempts: Def<number>;
  next_try_at: number;
  error: Def<string>;
  mailid: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: number;
  updated_at: number;
}

/** Webhook subscriptions (domain/events); the signing secret is encrypted with the server key. */
export interface WebhooksTable {
  id: Generated<number>;
  url: string;
  /** comma separated event kinds or patterns (sms.*, *) */
  events: string;
  secret_enc: string;
  enabled: Def<number>;
  created_at: number;
}

/** One row per delivery attempt of an event to a hook: pending → sending → done | retried | failed. */
export interface WebhookDeliveriesTable {
  id: Generated<number>;
  event_id: string;
  hookid: number;
  kind: string;
  /** the exact JSON body, the same on every attempt */
  body: Def<string>;
  attempt: number;
  state: string;
  status_code: Def<number>;
  latency_ms: Def<number>;
  error: Def<string>;
  next_try_at: number;
  created_at: number;
  updated_at: number;
}

/** A maintenance job's lease: held by `node` until `lease_until` (epoch ms; 0 or past: free). */
export interface JobsTable {
  name: string;
  node: string;
  started_at: number | null;
  lease_until: number;
}

/** One run of a maintenance job: what it did (result, JSON) or where it failed (error). */
export interface JobRunsTable {
  id: Generated<number>;
  job: string;
  node: string;
  started_at: number;
  ended_at: number | null;
  result: string;
  error: string;
}

/** An option as the settings table holds it (setini, loadinifiles, savesettings; src/ops/settings). */
export interface SettingsTable {
  name: string;
  module: string;
  value: string;
  /** 1 once the config file holds this value; 0 for a change not yet written (savesettings writes it). */
  saved: number;
  updated_at: number;
  updated_by: string;
}

export interface Database {
  tb_users: UsersTable;
  tb_api: ApiTable;
  tb_ledger: LedgerTable;
  tb_bans: BansTable;
  tb_tariffplans: TariffPlansTable;
  tb_tariffs: TariffsTable;
  tb_pinbatches: PinBatchesTable;
  tb_pins: PinsTable;
  tb_numbers: NumbersTable;
  tb_cli: CliTable;
  tb_callbacknumbers: CallbackNumbersTable;
  tb_callforward: CallForwardTable;
  tb_confrooms: ConfRoomsTable;
  tb_cdrs: CdrsTable;
  tb_imessages: IMessagesTable;
  tb_presence: PresenceTable;
  tb_gateways: GatewaysTable;
  tb_livecalls: LiveCallsTable;
  tb_reservations: ReservationsTable;
  tb_mail: MailTable;
  tb_fax: FaxTable;
  tb_webhooks: WebhooksTable;
  tb_webhook_deliveries: WebhookDeliveriesTable;
  tb_smsgateways: SmsGatewaysTable;
  tb_sms: SmsTable;
  tb_smsparts: SmsPartsTable;
  tb_smsmo: SmsMoTable;
  tb_jobs: JobsTable;
  tb_jobruns: JobRunsTable;
  tb_settings: SettingsTable;
}
