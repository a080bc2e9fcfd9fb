/**
 * Composition root: opens the data dir, configuration, storage and services, runs first-start set-up, and
 * starts the API listeners. Used by `voxswitch serve` and by the end-to-end tests.
 */
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
import { ApiRules } from './api/auth/rules.js';
import { buildRegistry } from './api/commands/index.js';
import { ApiGateway } from './api/gateway.js';
import { ApiListeners } from './api/transports/listeners.js';
import { closeDbRunner } from './api/commands/users.js';
import { SipStack } from './sip/stack.js';
import { SipServer } from './sip/server.js';
import { attachCalls, type B2bua } from './sip/calls/index.js';
import { LiveCalls } from './domain/calls/livecalls.js';
import { existingThirdParty } from './sip/thirdparty/controller.js';
import type { Source } from './api/types.js';
import type { Services } from './services.js';
import { firstStart } from './setup/firststart.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface ServerOptions {
  dataDir: string;
  overrides: Record<string, string>;
  /** Where first-start credentials are printed (once). */
  announce?: (text: string) => void;
  logger?: Logger;
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
  const box = SecretBox.fromDataDir(dataDir);
  const users = new UserService(storage.db, box);
  const ledger = new Ledger(storage.db, { cacheMs: storage.dialect === 'sqlite' ? 1000 : 0 });
  users.onCacheClear(() => ledger.invalidate());
  const rating = new RatingService(storage.db, config);
  await rating.load();
  const opts = config.options;
  const bans = new BanList(storage.db, {
    threshold: opts.authfailban,
    windowMs: opts.authfailwindow * 1000,
    banMs: opts.bantime * 1000,
  });
  await bans.load();
  bans.onBan = (b) =>
    log.warn({ ip: b.ip, reason: b.reason, until: new Date(b.until).toISOString() }, 'address banned');
  const rules = new ApiRules(storage.db, (fname, reason) =>
    log.error({ fname, reason }, 'custom API refused: its SQL template breaks the database rules'),
  );
  await rules.load();
  let hosts = ownHostSet(opts.serverhost);
  config.onChange((n) => (hosts = ownHostSet(n.serverhost)));

  const services: Services = {
    config,
    storage,
    users,
    ledger,
    money: new MoneyService(storage.db, ledger, users, config),
    rating,
    cdrs: new CdrService(storage.db, ledger, rating),
    numbers: new NumberService(storage.db, config),
    bans,
    rules,
    registry: buildRegistry(),
    log,
    startedAt: Date.now(),
    version: VERSION,
    listeners: [],
    async reload() {
      config.reload();
      users.clearCache();
      await rules.load();
      await rating.load();
    },
    ownHosts: () => hosts,
  };

  const first = await firstStart(services, o.announce ?? ((t) => process.stdout.write(t)));
  const gateway = new ApiGateway(services);
  await gateway.loadAdmin();
  const listeners = new ApiListeners(services, gateway);
  let sip: SipServer | undefined;
  let calls: B2bua | undefined;
  const stopCalls = async () => {
    await existingThirdParty(services)?.stop(); // BYE and CDRs for bridged callbacks/p2p
    await calls?.stop(); // BYE and CDRs for calls still up
  };
  try {
    services.listeners = await listeners.start();
    if (opts.usesip) {
      sip = createSip(services, dataDir, (text, source) => gateway.message(text, source).then((r) => r.enc.body));
      services.sip = sip;
      for (const l of await sip.start())
        services.listeners.push({ kind: `sip ${l.transport}`, address: l.address, port: l.port });
      calls = attachCalls(services, sip, sip.stack);
      await calls.recover(); // bills calls a crash left in tb_livecalls (idempotent)
    } else {
      // no SIP: still bill what a crash left open
      const leftover = new LiveCalls(services);
      await leftover.recover();
      leftover.stop();
    }
  } catch (e) {
    await first?.rollback().catch(() => undefined);
    await stopCalls().catch(() => undefined);
    await sip?.stop().catch(() => undefined);
    await listeners.stop();
    await gateway.close();
    await storage.close();
    throw e;
  }
  first?.announce();
  const stopReconcile = startReconciliation(ledger, log);
  log.info({ listeners: services.listeners, database: storage.describe, version: VERSION }, 'voxswitch started');
  return {
    services,
    gateway,
    async stop() {
      stopReconcile();
      await stopCalls();
      await sip?.stop();
      await listeners.stop();
      await gateway.close();
      await closeDbRunner(services);
      await storage.close();
    },
  };
}

/** The SIP stack and services from the sip* options (TLS and secure WebSocket when usetls is on). */
function createSip(
  services: Services,
  dataDir: string,
  api: (text: string, source: Source) => Promise<string>,
): SipServer {
  const o = services.config.options;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (o.usetls) {
    try {
      tls = { cert: readFileSync(resolve(dataDir, o.tlscert)), key: readFileSync(resolve(dataDir, o.tlskey)) };
    } catch (e) {
      throw new Error(
        `usetls is on but the certificate or key cannot be read (${(e as Error).message}); set tlscert/tlskey or run "voxswitch gencert"`,
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
    log: services.log,
  });
  return new SipServer(services, stack, { api, digestAlgorithms: o.sipdigest });
}
