/** What a command handler sees: the services it may use, who is calling, and the request. */
import type { User } from '../domain/accounts/users.js';
import type { Services } from '../services.js';
import type { CommandDecl } from './declaration.js';
import type { ApiRequest } from './types.js';

export interface Caller {
  /** The account the request acts as (undefined for public APIs called anonymously). */
  user?: User;
  /** How the caller was authenticated. */
  via: 'password' | 'md5' | 'pin' | 'username' | 'trusted-ip' | 'console' | 'session' | 'none';
  /** The source address is trusted (local, LAN, trustediplist) and not a web page. */
  trustedIp: boolean;
}

/** The gateway's own APIs (its registry and tb_api rules), as `help` and `apireload` need them. */
export interface ApiDirectory {
  /** Every declared command in declaration order, with whether it has a handler. */
  commands(): ReadonlyArray<CommandDecl & { available: boolean }>;
  /** Names of the custom SQL APIs of tb_api that no command declares. */
  customOnly(): string[];
  /** Re-reads tb_api; answers the number of rows. */
  reloadRules(): Promise<number>;
}

export interface CommandContext {
  services: Services;
  caller: Caller;
  req: ApiRequest;
  /** The gateway's APIs. */
  apis: ApiDirectory;
  /** Whether this caller, from this source, could call the named API (the same checks the gateway makes). */
  mayUse(name: string): boolean;
}
