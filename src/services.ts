/**
 * The services container: every long-lived member of a running server, built explicitly by the composition root
 * (src/server.ts) and closed there on shutdown. The API layer reads it through CommandContext.services. Domain and
 * SIP code never import this module: they take DomainServices (src/domain/deps.ts) or narrower parts.
 */
import type { DomainServices } from './domain/deps.js';
import type { SipServer } from './sip/server.js';
import type { B2bua } from './sip/calls/b2bua.js';
import type { CallControl } from './sip/callcontrol/controller.js';
import type { RoutingService } from './domain/routing/service.js';
import type { LiveCalls } from './domain/calls/livecalls.js';
import type { ApiRules } from './api/auth/rules.js';
import type { Registry } from './api/registry.js';

export interface Listener {
  kind: string;
  address: string;
  port: number;
}

export interface Services extends DomainServices {
  /** The SIP core; undefined when usesip=false. */
  sip?: SipServer;
  /** Call routing (gateways, DIDs, failover order). */
  routing: RoutingService;
  /** Calls in progress, credit reservations and their CDRs (also with usesip=false: crash recovery, quickstat). */
  liveCalls: LiveCalls;
  /** The B2BUA; undefined when usesip=false. */
  calls?: B2bua;
  /** Call control (callback / p2p); undefined when usesip=false. */
  callControl?: CallControl;
  rules: ApiRules;
  registry: Registry;
  startedAt: number;
  listeners: Listener[];
  /** Re-reads the configuration and applies it to the running services. */
  reload(): Promise<void>;
  /** Host names and addresses that are this server (for the HTTP Host check), lower case, IPv6 without brackets. */
  ownHosts(): Set<string>;
}
