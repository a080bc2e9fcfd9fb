/** What a command handler sees: the services it may use, who is calling, and the request. */
import type { User } from '../domain/accounts/users.js';
import type { Services } from '../services.js';
import type { ApiRequest } from './types.js';

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
