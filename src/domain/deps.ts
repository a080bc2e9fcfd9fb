/**
 * The domain services that domain and SIP code may depend on. The composition root (src/server.ts) builds them;
 * the full container (src/services.ts) extends this with the API's own members. Nothing here knows the API.
 */
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.js';
import type { Storage } from '../storage/db.js';
import type { UserService } from './accounts/users.js';
import type { Ledger } from './billing/ledger.js';
import type { MoneyService } from './billing/money.js';
import type { CdrService } from './billing/cdrs.js';
import type { RatingService } from './rating/service.js';
import type { NumberService } from './numbers/service.js';
import type { BanList } from './security/bans.js';
import type { State } from '../state/index.js';

export interface DomainServices {
  config: ConfigStore;
  storage: Storage;
  users: UserService;
  ledger: Ledger;
  money: MoneyService;
  rating: RatingService;
  cdrs: CdrService;
  numbers: NumberService;
  /** Addresses banned after repeated authentication failures (API and SIP share one list). */
  bans: BanList;
  /** Hot, expiring state (single-use tokens, nonce counts, limits, bus, ttl/hash stores): in-process or Redis. */
  state: State;
  /** The main log. */
  log: Logger;
  /** The loggers of the other log areas: sip (registrations, calls), tcp (API access), cdr (one line per CDR). */
  logs: AreaLogs;
  version: string;
}

export type LogAreaName = 'main' | 'sip' | 'tcp' | 'cdr';
export interface AreaLogs {
  get(area: LogAreaName): Logger;
}
