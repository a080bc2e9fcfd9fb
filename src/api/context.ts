/** What a command handler sees: the services it may use, who is calling, and the request. */
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.js';
import type { Storage } from '../storage/db.js';
import type { UserService, User } from '../domain/accounts/users.js';
import type { Ledger } from '../domain/billing/ledger.js';
import type { BanList } from './auth/bans.js';
import type { RatingService } from '../domain/rating/service.js';
import type { CdrService } from '../domain/billing/cdrs.js';
import type { MoneyService } from '../domain/billing/money.js';
import type { NumberService } from '../domain/numbers/service.js';
import type { SipServer } from '../sip/server.js';
import type { ApiRules } from './auth/rules.js';
import type { Registry } from './registry.js';
import type { ApiRequest } from './types.js';

export interface Listener {
  kind: string;
  address: string;
  port: number;
}

export interface Services {
  config: ConfigStore;
  storage: Storage;
  users: UserService;
  ledger: Ledger;
  money: MoneyService;
  rating: RatingService;
  cdrs: CdrService;
  numbers: NumberService;
  /** The SIP core; undefined when usesip=false. */
  sip?: SipServer;
  bans: BanList;
  rules: ApiRules;
  registry: Registry;
  log: Logger;
  startedAt: number;
  version: string;
  listeners: Listener[];
  /** Re-reads the configuration and applies it to the running services. */
  reload(): Promise<void>;
  /** Host names and addresses that are this server (for the HTTP Host check), lower case, IPv6 without brackets. */
  ownHosts(): Set<string>;
}

export interface Caller {
  /** The account the request acts as (undefined for public APIs called anonymously). */
  user?: User;
  /** How the caller was authenticated. */
  via: 'password' | 'md5' | 'pin' | 'username' | 'trusted-ip' | 'console' | 'none';
  /** The source address is trusted (local, LAN, trustediplist) and not a web page. */
  trustedIp: boolean;
}

export interface CommandContext {
  services: Services;
  caller: Caller;
  req: ApiRequest;
  /** Whether this caller, from this source, could call the named API (the same checks the gateway makes). */
  mayUse(name: string): boolean;
}
