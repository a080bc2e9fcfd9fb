/**
 * Composition root: opens the data dir, configuration, storage and services, runs first-start set-up, and
 * starts the API listeners. Used by `voxswitch serve` and by the end-to-end tests.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { networkInterfaces, hostname } from 'node:os';
import type { Logger } from 'pino';
import { LogAreas } from './ops/logs/index.js';
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
import { answerSms } from './api/transports/sms.js';
import { WebConsole } from './api/console/routes.js';
import { buildProbes } from './api/probes/index.js';
import { DbRunner } from './api/customsql/dbrunner.js';
import { HourlyAttempts } from './api/auth/attempts.js';
import type { SipSource } from './sip/stack.js';
import type { HandoffOptions } from './sip/transport/handoff.js';
import type { SipApiHandler, SipServer } from './sip/server.js';
import { B2bua } from './sip/calls/b2bua.js';
import { CallControl } from './sip/callcontrol/controller.js';
import { buildTrunks, createSip, phoneMessagesAsSms } from './sipbuild.js';
import { LiveCalls } from './domain/calls/livecalls.js';
import { SharedLiveCalls } from './domain/calls/shared.js';
import { RoutingService } from './domain/routing/service.js';
import type { Source } from './api/types.js';
import { RESTART_EXIT_CODE, type Services, type ServerControl } from './services.js';
import type { DomainServices } from './domain/deps.js';
import { firstStart } from './setup/firststart.js';
import { DomainError } from './domain/errors.js';
import { OverloadMonitor } from './overload/monitor.js';
import { NodeStatsPublisher } from './api/nodestats.js';
import { SmsGatewayStore } from './domain/messaging/sms/store.js';
import { SmsService } from './domain/messaging/sms/service.js';
import { SmsWorker } from './domain/messaging/sms/worker.js';
import { SmppPool } from './domain/messaging/smpp/pool.js';
import { WebhookService } from './domain/events/webhooks.js';
import { mailDailyReport } from './ops/reports/mail.js';
import { Mailer } from './domain/mail/mailer.js';
import { LowCreditNotices } from './domain/mail/lowcredit.js';
import { FaxService } from './domain/fax/service.js';
import { BackupService } from './ops/backup/backup.js';
import { Maintenance } from './ops/maintenance/scheduler.js';
import { SettingsService } from './ops/settings/service.js';
import { RuntimeProbe } from './ops/runtime.js';
import { deviceId } from './ops/deviceid.js';
import type { DailyReport } from './ops/reports/daily.js';

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
  /** A daily report was written (the e-mail hook: the composition root's caller wires a mailer here). */
  onReport?: (report: DailyReport, files: { text: string; html: string }) => void;
  /** How servicerst ends the process once the server has stopped (default process.exit). */
  exit?: (code: number) => void;
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
  const logs = new LogAreas({
    dir: config.get('logdir') ? resolve(dataDir, config.get('logdir')) : join(dataDir, 'logs'),
    level: config.get('loglevel'),
    levels: config.get('loglevels'),
    maxSizeMb: config.get('logmaxsize'),
    maxFiles: config.get('logmaxfiles'),
    interval: config.get('logrotate'),
    root: o.logger,
  });
  const log = logs.get('main');
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
    cdrs: new CdrService(storage.db, ledger, rating, logs.get('cdr')),
    numbers: new NumberService(storage.db, config),
    bans,
    state,
    log,
    logs,
    version: VERSION,
  };
  // this process's worker index (0: a single process); each worker owns its live calls (named as in the node
  // stats, nodeid/N): a worker's start recovers only what a previous run of that worker left
  const worker = o.handoff && o.handoff.count > 1 ? o.handoff.self : 0;
  const processId = worker ? `${state.nodeId}/${worker}` : config.get('nodeid');
  const liveCalls = new LiveCalls(domain, { node: processId });
  const smsGateways = new SmsGatewayStore(storage.db, box);
  const sms = new SmsService({ ...domain, db: storage.db, dialect: storage.dialect, gateways: smsGateways });
  // one SMPP session per enabled gateway; the worker submits the queue (tb_sms) through them
  const smpp = new SmppPool(box, {
    enquireLinkMs: opts.smsenquirelink * 1000,
    backoffMinMs: 500,
    backoffMaxMs: 30_000,
    responseTimeoutMs: 30_000,
    log: (level, obj, msg) => log[level](obj, msg),
  });
  // the queue rows this process claims carry its name: at its next start it settles what it left (nodeid per node)
  const smsOwner = worker ? processId : state.nodeId;
  const smsWorker = new SmsWorker(sms, smsGateways, smpp, config, log, { owner: smsOwner });
  sms.attach(smpp, smsWorker);
  // events out (signed webhooks), the e-mail queue and faxes; their queue loops start once the server is up
  const webhooks = new WebhookService(domain, box);
  sms.events = webhooks;
  const mailer = new Mailer(domain, webhooks);
  // a debit taking an account below lowcreditlimit queues one e-mail notice, in the debit's transaction
  ledger.watchLowCredit(new LowCreditNotices(mailer, config, log));
  const fax = new FaxService(domain, mailer, webhooks);
  const queues = [mailer.loop, fax.loop, webhooks.loop];
  const node = processId || state.nodeId;
  const report = o.onReport ?? mailDailyReport(mailer, () => config.options, log);
  const ops = {
    backups: new BackupService({ storage, dataDir, log, node, version: VERSION, options: () => config.options }),
    maintenance: new Maintenance({
      storage,
      ledger,
      dataDir,
      log,
      node,
      options: () => config.options,
      onReport: report,
    }),
    runtime: new RuntimeProbe(),
    logs,
    deviceId: deviceId(dataDir),
    node,
    report,
    settings: new SettingsService({ config, storage, log }),
  };
  let draining = false;
  // filled in below, once the SIP part and stop() exist
  const control: ServerControl = {
    restartSip: async () => 'not started',
    restart: () => 'not started',
    get draining() {
      return draining;
    },
  };
  const services: Services = {
    ...domain,
    routing: new RoutingService(domain),
    liveCalls,
    sms,
    sharedCalls: new SharedLiveCalls(() => services.liveCalls, storage.db, state.bus),
    dbRunner: new DbRunner({
      dialect: storage.dialect,
      location: storage.location,
      maxRows: () => config.get('dbmaxrows'),
    }),
    mailer,
    fax,
    webhooks,
    signups: new HourlyAttempts(),
    forgotFailures: new HourlyAttempts(),
    ops,
    control,
    startedAt: Date.now(),
    listeners: [],
    async reload() {
      config.reload();
      users.clearCache();
      await rules.load();
      await rating.load();
      log.info('configuration reloaded');
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
  // incoming SMS: to a user's DID it is charged to them (mobile.ts) and reaches them as a SIP MESSAGE (or the offline
  // IM store); to any other number (the service number) an API command in the text runs through the gateway and is
  // answered by SMS
  sms.onMobileOriginated({
    recipient: (to) => services.routing.localUser(to),
    async deliver(m, user) {
      const sip = services.sip;
      if (user) {
        if (!sip) return false;
        await sip.deliverIm(m.from, user.username, Buffer.from(m.text, 'utf8'), 'text/plain;charset=utf-8', 3000);
        return true;
      }
      const answer = await answerSms(gateway, config.options.apiv2key || config.options.httpapikey, m.text);
      if (answer === undefined) return false;
      await sms.reply(m.from, m.to, answer).catch((e) => log.warn({ err: e, to: m.from }, 'SMS API answer not sent'));
      return true;
    },
  });
  const nodeStats = new NodeStatsPublisher(services, {
    intervalMs: o.nodeStatsMs,
    apiRequests: () => gateway.requests,
    worker,
  });
  services.nodeStats = nodeStats;
  // the web console (/console on the API ports): sessions in the state layer, commands through the gateway
  const webConsole = new WebConsole(services, gateway);
  const listeners = new ApiListeners(services, gateway, webConsole, buildProbes(services, gateway));
  // API over SIP: the SIP server gets a handler in SIP terms; the API gateway answers it
  const sipApi: SipApiHandler = (text, from) => gateway.message(text, apiSource(from)).then((r) => r.enc.body);
  const sipKeys = { nonce: o.sipSecret ?? box.derive('sip digest nonce'), relay: box.derive('sip node relay') };
  // while servicerst drains, new INVITEs and REGISTERs are refused with 503 and a Retry-After
  const shed = (continuation: boolean) => (draining ? 30 : (services.overload?.shed('sip', continuation) ?? 0));
  /** Builds and starts the SIP stack, the SIP server, the B2BUA and call control from the current options. */
  // the SIP server this server started (stopped by stopSipLayers even if services.sip was replaced meanwhile)
  let ownSip: SipServer | undefined;
  const startSip = async () => {
    const sip = createSip(services, dataDir, sipApi, sipKeys, shed, o.handoff);
    services.sip = sip;
    sip.setPhoneMessageHandler(phoneMessagesAsSms(services));
    ownSip = sip;
    for (const l of await sip.start()) {
      services.listeners.push({ kind: `sip ${l.transport}`, address: l.address, port: l.port });
      if (l.transport === 'udp') overload.watchUdpPort(l.port);
    }
    const live = services.liveCalls;
    services.calls = new B2bua({ services, sip, router: services.routing, live });
    const media = services.calls.media;
    services.callControl = new CallControl({ services, sip, routing: services.routing, live, media });
    const control = services.callControl;
    services.calls.startCallback = async (u, a, b) => (await control.start('callback', u, a, b)).callid;
    // every step of a callback/p2p call goes out as a signed webhook event (call.progress)
    services.callControl.progress.onChange = (p) =>
      void services.webhooks
        .emit('call.progress', { ...p })
        .catch((e) => log.warn({ err: e }, 'call event not queued'));
    services.calls.start();
    services.trunks = buildTrunks(services, sip, worker);
    await services.trunks.start();
  };
  /** Ends the call layers (BYE and CDRs for the calls still up), then the SIP server and stack. */
  const stopSipLayers = async () => {
    await services.trunks?.stop(); // unregisters (Expires: 0) while the stack still runs
    await services.callControl?.stop();
    await services.calls?.stop();
    await ownSip?.stop();
    ownSip = undefined;
    services.callControl = undefined;
    services.calls = undefined;
    services.sip = undefined;
    services.listeners = services.listeners.filter((l) => !l.kind.startsWith('sip '));
  };
  const stopSip = async () => {
    await stopSipLayers();
    services.sharedCalls.stop();
    services.liveCalls.stop();
  };
  try {
    services.listeners = await listeners.start();
    if (opts.usesip) await startSip();
    // bills the calls a crash left in tb_livecalls (idempotent), with or without SIP
    await services.liveCalls.recover();
    // answers the other processes' disccall for the calls of this one
    await services.sharedCalls.start();
    // settles the SMS a stop left in submitting (at most once), binds the gateways, submits the queue
    await smsWorker.start();
  } catch (e) {
    await smsWorker.stop().catch(() => undefined);
    await smpp.stop().catch(() => undefined);
    await first?.rollback().catch(() => undefined);
    await stopSip().catch(() => undefined);
    webConsole.close();
    await listeners.stop();
    await gateway.close();
    await services.dbRunner.close();
    await storage.close();
    await state.close();
    throw e;
  }
  first?.announce();
  for (const q of queues) q.start();
  overload.start();
  nodeStats.start();
  ops.runtime.start();
  ops.maintenance.start();
  const stopReconcile = startReconciliation(ledger, log);
  log.info(
    { listeners: services.listeners, database: storage.describe, state: state.describe, version: VERSION },
    'voxswitch started',
  );
  let stopped: Promise<void> | undefined;
  const running: RunningServer = {
    services,
    gateway,
    stop() {
      stopped ??= stopAll();
      return stopped;
    },
  };
  const stopAll = async () => {
    ops.maintenance.stop();
    ops.runtime.stop();
    stopReconcile();
    for (const q of queues) await q.stop();
    overload.stop();
    await nodeStats.stop();
    await smsWorker.stop();
    await smpp.stop();
    await stopSip();
    webConsole.close();
    await listeners.stop();
    await gateway.close();
    await services.dbRunner.close();
    await storage.close();
    await state.close();
    log.info({ node }, 'voxswitch stopped');
    await logs.close();
  };
  Object.assign(
    control,
    controlOf(services, { startSip, stopSipLayers, running, exit: o.exit }, (d) => (draining = d)),
  );
  return running;
}

interface ControlParts {
  startSip: () => Promise<void>;
  stopSipLayers: () => Promise<void>;
  running: RunningServer;
  exit?: (code: number) => void;
}

/** sipreset/vsiprst and servicerst over the parts of the running server. */
function controlOf(
  services: Services,
  parts: ControlParts,
  setDraining: (on: boolean) => void,
): Pick<ServerControl, 'restartSip' | 'restart'> {
  const log = services.log;
  let sipBusy = false;
  let restarting = false;
  return {
    async restartSip() {
      if (!services.config.options.usesip)
        throw new DomainError('the SIP stack is off (usesip=false): set usesip=true and restart voxswitch', 'config');
      if (restarting) throw new DomainError('a service restart is under way', 'conflict');
      if (sipBusy) throw new DomainError('a SIP restart is already under way', 'conflict');
      sipBusy = true;
      const calls = services.liveCalls.list().length;
      try {
        await parts.stopSipLayers();
        await parts.startSip();
      } catch (e) {
        log.error({ err: (e as Error).message }, 'SIP stack restart failed: SIP is down, the API still answers');
        throw new DomainError(
          `SIP stack not started again: ${(e as Error).message} (the API still answers; run sipreset again)`,
          'unavailable',
        );
      } finally {
        sipBusy = false;
      }
      const sip = services.listeners.filter((l) => l.kind.startsWith('sip '));
      log.info({ endedCalls: calls, listeners: sip }, 'SIP stack restarted');
      return (
        `SIP stack restarted: ${calls} live calls were ended (BYE) and billed; registrations kept; listening on ` +
        sip.map((l) => `${l.kind} ${l.address}:${l.port}`).join(', ')
      );
    },
    restart() {
      const waitS = services.config.options.servicerstwait;
      if (restarting) return 'a restart is already under way';
      restarting = true;
      setDraining(true);
      const live = services.liveCalls.list().length;
      log.warn({ liveCalls: live, waitS }, 'servicerst: draining, then exiting for the service manager to restart');
      void (async () => {
        const until = Date.now() + waitS * 1000;
        // the answer goes out first
        await new Promise((r) => setTimeout(r, 200));
        while (services.liveCalls.list().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
        await parts.running.stop().catch((e: unknown) => log.error({ err: String(e) }, 'servicerst: stop failed'));
        (parts.exit ?? ((c: number) => process.exit(c)))(RESTART_EXIT_CODE);
      })();
      return (
        `restarting: new calls are refused; ${live} live calls have up to ${waitS} s to end (the rest are ended ` +
        `and billed), then voxswitch stops and exits with code ${RESTART_EXIT_CODE} for the service manager to ` +
        'start it again'
      );
    },
  };
}

/** The API's view of a request carried in SIP. */
function apiSource(from: SipSource): Source {
  return { transport: 'sip', ip: from.ip, port: from.port, browser: false };
}
