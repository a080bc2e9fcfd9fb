/**
 * Composition root: opens the data dir, configuration, storage and services, runs first-start set-up, and
 * starts the API listeners. Used by `voxswitch serve` and by the end-to-end tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { networkInterfaces, hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { ConfigStore } from './config/store.js';
import { openStorage } from './storage/db.js';
import { SecretBox } from './domain/accounts/secrets.js';
import { UserService } from './domain/accounts/users.js';
import { Ledger } from './domain/billing/ledger.js';
import { startReconciliation } from './domain/billing/reconcile.js';
import { MoneyService } from './domain/billing/money.js';
import { CdrService } from './domain/billing/cdrs.js';
import { RatingService } from './domain/rating/service.js';
import { NumberService } from './domain/numbers/service.js';
import { BanList } from './domain/security/bans.js';
import { openState } from './state/index.js';
import { ApiRules } from './api/auth/rules.js';
import { buildRegistry } from './api/commands/index.js';
import { ApiGateway } from './api/gateway.js';
import { ApiListeners } from './api/transports/listeners.js';
import { DbRunner } from './api/customsql/dbrunner.js';
import { HourlyAttempts } from './api/auth/attempts.js';
import { SipStack, type SipSource } from './sip/stack.js';
import type { HandoffOptions } from './sip/transport/handoff.js';
import { RelayDirectory } from './sip/services/relaydir.js';
import { SipServer, type SipApiHandler } from './sip/server.js';
import { B2bua } from './sip/calls/b2bua.js';
import { CallControl } from './sip/callcontrol/controller.js';
import { TrunkRegistrar } from './sip/trunks/registrar.js';
import { LiveCalls } from './domain/calls/livecalls.js';
import { SharedLiveCalls } from './domain/calls/shared.js';
import { RoutingService } from './domain/routing/service.js';
import type { Source } from './api/types.js';
import type { Services } from './services.js';
import type { DomainServices } from './domain/deps.js';
import { firstStart } from './setup/firststart.js';
import { OverloadMonitor } from './overload/monitor.js';
import { NodeStatsPublisher } from './api/nodestats.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface ServerOptions {
  dataDir: string;
  overrides: Record<string, string>;
  /** Where first-start credentials are printed (once). */
  announce?: (text: string) => void;
  logger?: Logger;
  /** Prefix of the shared state's Redis keys and channels (default "vx:"; tests use one of their own). */
  statePrefix?: string;
  /** Heartbeat of this process's announced counters (default 5 s; tests use a short one). */
  nodeStatsMs?: number;
  /** Digest nonce secret shared by the workers of one server (random per process when omitted). */
  sipSecret?: Buffer;
  /** One worker of `serve --workers N`: SIP messages go to the worker owning their Call-ID (sip/transport/handoff). */
  handoff?: HandoffOptions;
}

export interface RunningServer {
  services: Services;
  gateway: ApiGateway;
  stop(): Promise<void>;
}

function ownHostSet(extra: string[]): Set<string> {
  const set = new Set<string>(['localhost', '127.0.0.1', '::1', hostname().toLowerCase()]);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) set.add(a.address.toLowerCase());
  for (const h of extra) set.add(h);
  return set;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const dataDir = resolve(o.dataDir);
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  const config = new ConfigStore(dataDir, o.overrides);
  const log =
    o.logger ??
    pino(
      {
        level: config.get('loglevel'),
        redact: { paths: ['*.password', '*.authpwd', '*.authmd5', '*.u_password', '*.apiv2key'], censor: '***' },
      },
      pino.multistream([
        { stream: pino.destination({ dest: join(dataDir, 'logs', 'main.log'), mkdir: true, sync: true }) },
        { stream: process.stderr, level: 'warn' },
      ]),
    );
  const storage = await openStorage(config.get('dburl'), dataDir);
  // VOXSWITCH_STATE_PREFIX: a second switch (a test, a benchmark) on the same Redis keeps to keys of its own
  const prefix = o.statePrefix ?? (process.env.VOXSWITCH_STATE_PREFIX || undefined);
  const stateOpts = { redisUrl: config.get('redisurl'), nodeId: config.get('nodeid'), log, prefix };
  const state = await openState(stateOpts).catch(async (e: unknown) => {
    await storage.close();
    throw e;
  });
  const box = SecretBox.fromDataDir(dataDir);
  const users = new UserService(storage.db, box);
  const ledger = new Ledger(storage.db, { cacheMs: storage.dialect === 'sqlite' ? 1000 : 0 });
  users.onCacheClear(() => ledger.invalidate());
  const rating = new RatingService(storage.db, config);
  await rating.load();
  const opts = config.options;
  const banPolicy = { threshold: opts.authfailban, windowMs: opts.authfailwindow * 1000, banMs: opts.bantime * 1000 };
  const bans = new BanList(storage.db, banPolicy, undefined, state.bans);
  await bans.load();
  bans.onBan = (b) =>
    log.warn({ ip: b.ip, reason: b.reason, until: new Date(b.until).toISOString() }, 'address banned');
  const rules = new ApiRules(storage.db, (fname, reason) =>
    log.error({ fname, reason }, 'custom API refused: its SQL template breaks the database rules'),
  );
  await rules.load();
  let hosts = ownHostSet(opts.serverhost);
  config.onChange((n) => (hosts = ownHostSet(n.serverhost)));

  const domain: DomainServices = {
    config,
    storage,
    users,
    ledger,
    money: new MoneyService(storage.db, ledger, users, config),
    rating,
    cdrs: new CdrService(storage.db, ledger, rating),
    numbers: new NumberService(storage.db, config),
    bans,
    state,
    log,
    version: VERSION,
  };
  // this process's worker index (0: a single process); each worker owns its live calls (named as in the node
  // stats, nodeid/N): a worker's start recovers only what a previous run of that worker left
  const worker = o.handoff && o.handoff.count > 1 ? o.handoff.self : 0;
  const liveCalls = new LiveCalls(domain, { node: worker ? `${state.nodeId}/${worker}` : config.get('nodeid') });
  const services: Services = {
    ...domain,
    routing: new RoutingService(domain),
    liveCalls,
    sharedCalls: new SharedLiveCalls(() => services.liveCalls, storage.db, state.bus),
    dbRunner: new DbRunner({
      dialect: storage.dialect,
      location: storage.location,
      maxRows: () => config.get('dbmaxrows'),
    }),
    signups: new HourlyAttempts(),
    forgotFailures: new HourlyAttempts(),
    startedAt: Date.now(),
    listeners: [],
    async reload() {
      config.reload();
      users.clearCache();
      await rules.load();
      await rating.load();
    },
    ownHosts: () => hosts,
  };
  const overloadOf = (x: typeof opts) => ({
    thresholdMs: x.overloaddelay,
    loadTargetPct: x.overloadload,
    minRate: x.overloadminrate,
    queueHighBytes: x.overloadqueue * 1024,
  });
  const overload = new OverloadMonitor(overloadOf(opts));
  config.onChange((n) => Object.assign(overload, overloadOf(n)));
  services.overload = overload;

  const first = await firstStart(services, o.announce ?? ((t) => process.stdout.write(t)));
  const gateway = new ApiGateway(services, { registry: buildRegistry(), rules });
  await gateway.loadAdmin();
  const nodeStats = new NodeStatsPublisher(services, {
    intervalMs: o.nodeStatsMs,
    apiRequests: () => gateway.requests,
    worker,
  });
  services.nodeStats = nodeStats;
  const listeners = new ApiListeners(services, gateway);
  let sip: SipServer | undefined;
  /** Ends the call layers (BYE and CDRs for the calls still up), then SIP and the live calls. */
  const stopSip = async () => {
    await services.trunks?.stop(); // unregisters (Expires: 0) while the stack still runs
    await services.callControl?.stop();
    await services.calls?.stop();
    await sip?.stop();
    services.sharedCalls.stop();
    services.liveCalls.stop();
  };
  try {
    services.listeners = await listeners.start();
    if (opts.usesip) {
      // API over SIP: the SIP server gets a handler in SIP terms; the API gateway answers it
      const api: SipApiHandler = (text, from) => gateway.message(text, apiSource(from)).then((r) => r.enc.body);
      const keys = { nonce: o.sipSecret ?? box.derive('sip digest nonce'), relay: box.derive('sip node relay') };
      sip = createSip(services, dataDir, api, keys, o.handoff);
      services.sip = sip;
      for (const l of await sip.start()) {
        services.listeners.push({ kind: `sip ${l.transport}`, address: l.address, port: l.port });
        if (l.transport === 'udp') overload.watchUdpPort(l.port);
      }
      const live = services.liveCalls;
      services.calls = new B2bua({ services, sip, router: services.routing, live });
      services.callControl = new CallControl({ services, sip, routing: services.routing, live });
      services.calls.start();
      services.trunks = buildTrunks(services, sip, worker);
      await services.trunks.start();
    }
    // bills the calls a crash left in tb_livecalls (idempotent), with or without SIP
    await services.liveCalls.recover();
    // answers the other processes' disccall for the calls of this one
    await services.sharedCalls.start();
  } catch (e) {
    await first?.rollback().catch(() => undefined);
    await stopSip().catch(() => undefined);
    await listeners.stop();
    await gateway.close();
    await services.dbRunner.close();
    await storage.close();
    await state.close();
    throw e;
  }
  first?.announce();
  overload.start();
  nodeStats.start();
  const stopReconcile = startReconciliation(ledger, log);
  log.info(
    { listeners: services.listeners, database: storage.describe, state: state.describe, version: VERSION },
    'voxswitch started',
  );
  return {
    services,
    gateway,
    async stop() {
      stopReconcile();
      overload.stop();
      await nodeStats.stop();
      await stopSip();
      await listeners.stop();
      await gateway.close();
      await services.dbRunner.close();
      await storage.close();
      await state.close();
    },
  };
}

/** The trunk registrar (gateways with register=1); its lease owner names this process (node, worker). */
function buildTrunks(services: Services, sip: SipServer, worker: number): TrunkRegistrar {
  const o = services.config.options;
  const retry = (x: typeof o) => ({ retryMinMs: x.trunkretry * 1000, retryMaxMs: x.trunkretrymax * 1000 });
  const trunks = new TrunkRegistrar(
    {
      trunks: () => services.routing.trunks(),
      trust: (id, ips) => services.routing.trustAddresses(id, ips),
      stack: sip.stack,
      resolver: sip.resolver,
      log: services.log,
      leases: services.state.hash('trunks'),
      owner: `${services.state.nodeId}/${worker}`,
    },
    retry(o),
  );
  services.config.onChange((n) => Object.assign(trunks.o, retry(n)));
  return trunks;
}

/** The SIP stack and services from the sip* options (TLS and secure WebSocket when usetls is on). */
function createSip(
  services: Services,
  dataDir: string,
  apiHandler: SipApiHandler,
  keys: { nonce: Buffer; relay: Buffer },
  workers?: HandoffOptions,
): SipServer {
  const o = services.config.options;
  // between nodes (siprelayport): a directory over the bus, and the hand-off also in a single process
  const st = services.state;
  let relay: { directory: RelayDirectory; port: number } | undefined;
  if (o.siprelayport > 0) {
    if (st.kind !== 'redis') throw new Error('siprelayport needs redisurl: the nodes find each other over Redis');
    relay = { directory: new RelayDirectory(st.bus, st.nodeId, services.log), port: o.siprelayport };
  }
  const dir = relay?.directory;
  const relayOpts = dir && {
    node: st.nodeId,
    key: keys.relay,
    bindAddr: o.sipbindaddr,
    port: o.siprelayport,
    addressOf: (n: string) => dir.addressOf(n),
    nodeOfTag: (t: string) => dir.nodeOfTag(t),
  };
  const alone = { self: 1, count: 1, secret: randomBytes(32), announce: () => undefined };
  const handoff = relayOpts ? { ...(workers ?? alone), relay: relayOpts } : workers;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (o.usetls) {
    try {
      tls = { cert: readFileSync(resolve(dataDir, o.tlscert)), key: readFileSync(resolve(dataDir, o.tlskey)) };
    } catch (e) {
      throw new Error(
        `usetls is on but the certificate or key cannot be read (${(e as Error).message}); set tlscert/tlskey or ` +
          `run "voxswitch gencert"`,
      );
    }
  }
  const stack = new SipStack({
    bindAddr: o.sipbindaddr,
    udpPort: o.sipport,
    tcpPort: o.sipport,
    tlsPort: o.usetls ? o.siptlsport : undefined,
    wsPort: o.sipwsport && !o.usetls ? o.sipwsport : undefined,
    wssPort: o.sipwsport && o.usetls ? o.sipwsport : undefined,
    tls,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
    maxConnectionsPerIp: o.sipmaxconnperip,
    isBanned: (ip) => services.bans.isBanned(ip),
    handoff,
    log: services.log,
  });
  const shed = (continuation: boolean) => services.overload?.shed('sip', continuation) ?? 0;
  return new SipServer(services, stack, { apiHandler, digestAlgorithms: o.sipdigest, secret: keys.nonce, shed, relay });
}

/** The API's view of a request carried in SIP. */
function apiSource(from: SipSource): Source {
  return { transport: 'sip', ip: from.ip, port: from.port, browser: false };
}
