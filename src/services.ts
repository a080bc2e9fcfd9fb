/**
 * The services container: every long-lived member of a running server, built explicitly by the composition root
 * (src/server.ts) and closed there on shutdown. The API layer reads it through CommandContext.services. Domain and
 * SIP code never import this module: they take DomainServices (src/domain/deps.ts) or narrower parts. The API
 * gateway's own parts (the command registry, the tb_api rules) are not members: the gateway holds them and hands
 * commands what they need through CommandContext.
 */
import type { DomainServices } from './domain/deps.js';
import type { SipServer } from './sip/server.js';
import type { DbRunner } from './api/customsql/dbrunner.js';
import type { HourlyAttempts } from './api/auth/attempts.js';
import type { B2bua } from './sip/calls/b2bua.js';
import type { CallControl } from './sip/callcontrol/controller.js';
import type { RoutingService } from './domain/routing/service.js';
import type { LiveCalls } from './domain/calls/livecalls.js';
import type { SharedLiveCalls } from './domain/calls/shared.js';
import type { OverloadGate } from './overload/monitor.js';
import type { NodeStatsPublisher } from './api/nodestats.js';
import type { TrunkRegistrar } from './sip/trunks/registrar.js';

export interface Listener {
  kind: string;
  address: string;
  port: number;
}

export interface Services extends DomainServices {
  /** The SIP core; undefined when usesip=false. */
  sip?: SipServer;
  /** The `db` command's SQL runner (its worker starts on the first statement). */
  dbRunner: DbRunner;
  /** Public sign-ups per source address (newuseru's hourly cap). */
  signups: HourlyAttempts;
  /** Wrong forgotten-password answers per e-mail (forgotpasswordanswer's hourly cap). */
  forgotFailures: HourlyAttempts;
  /** Call routing (gateways, DIDs, failover order). */
  routing: RoutingService;
  /** Calls in progress, credit reservations and their CDRs (also with usesip=false: crash recovery, quickstat). */
  liveCalls: LiveCalls;
  /** The live calls of every process (tb_livecalls) and disccall of a call held elsewhere (over the bus). */
  sharedCalls: SharedLiveCalls;
  /** The B2BUA; undefined when usesip=false. */
  calls?: B2bua;
  /** Call control (callback / p2p); undefined when usesip=false. */
  callControl?: CallControl;
  /** Trunk registration of the gateways with register=1 (states, re-register); undefined when usesip=false. */
  trunks?: TrunkRegistrar;
  /** Overload control (event-loop delay): refuses new INVITE/REGISTER/API requests past overloaddelay. */
  overload?: OverloadGate;
  /** This process's counters, announced to the other nodes (info / quickstat per node and in total). */
  nodeStats?: NodeStatsPublisher;
  startedAt: number;
  listeners: Listener[];
  /** Re-reads the configuration and applies it to the running services. */
  reload(): Promise<void>;
  /** Host names and addresses that are this server (for the HTTP Host check), lower case, IPv6 without brackets. */
  ownHosts(): Set<string>;
}
