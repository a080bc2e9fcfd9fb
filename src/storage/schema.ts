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
}
