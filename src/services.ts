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
import type { SmsService } from './domain/messaging/sms/service.js';
import type { Mailer } from './domain/mail/mailer.js';
import type { FaxService } from './domain/fax/service.js';
import type { WebhookService } from './domain/events/webhooks.js';
import type { OpsServices } from './ops/index.js';
import type { TrunkRegistrar } from './sip/trunks/registrar.js';

export interface Listener {
  kind: string;
  address: string;
  port: number;
}

/** Restarts that the API can ask for (sipreset/vsiprst, servicerst); built by the composition root. */
export interface ServerControl {
  /** Stops the SIP stack and its call layers (live calls are ended with BYE and billed) and builds them again. */
  restartSip(): Promise<string>;
  /**
   * Graceful restart: new calls refused, live calls given up to servicerstwait seconds, then the server stops and
   * the process exits with RESTART_EXIT_CODE for the service manager to start it again. Answers at once.
   */
  restart(): string;
  /** True once a restart has begun (new INVITE/REGISTER are refused with 503). */
  readonly draining: boolean;
}

/** Exit code of servicerst: systemd's unit restarts on it (RestartForceExitStatus=75, EX_TEMPFAIL). */
export const RESTART_EXIT_CODE = 75;

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
  /** SMS over SMPP: gateways, the durable outbound queue (its worker and sessions are built by server.ts). */
  sms: SmsService;
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
  /** The e-mail queue (tb_mail) and its SMTP relay: `mailer.enqueue({...})` for any notice. */
  mailer: Mailer;
  /** sendfax: faxes (tb_fax) through the configured e-mail or HTTP fax service. */
  fax: FaxService;
  /** Signed webhooks (tb_webhooks, tb_webhook_deliveries); `webhooks.emit(kind, data)` announces an event. */
  webhooks: WebhookService;
  /** Backups, maintenance jobs, runtime figures, the installation id. */
  ops: OpsServices;
  /** sipreset / servicerst. */
  control: ServerControl;
  startedAt: number;
  listeners: Listener[];
  /** Re-reads the configuration and applies it to the running services. */
  reload(): Promise<void>;
  /** Host names and addresses that are this server (for the HTTP Host check), lower case, IPv6 without brackets. */
  ownHosts(): Set<string>;
}
