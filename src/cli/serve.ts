/**
 * `voxswitch serve`: one server process, or with --workers N (or the workers option) a cluster primary that runs N
 * of them on the same ports (src/cluster). A worker of the cluster runs this same command and tells the primary
 * when it is ready.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { startServer } from '../server.js';
import { parseSetArgs, ConfigStore } from '../config/store.js';
import { ConfigError } from '../config/options.js';
import { planWorkers } from '../cluster/workers.js';
import { runPrimary, WORKER_ENV, type PrimaryMessage, type WorkerMessage } from '../cluster/primary.js';

export interface ServeArgs {
  dataDir: string;
  set: string[];
  workers?: string;
}

/** Called once the server runs; a reader that goes away must not stop it. */
export async function serve(o: ServeArgs, onServing: () => void): Promise<void> {
  try {
    onServing();
    const overrides = parseSetArgs(o.set);
    mkdirSync(o.dataDir, { recursive: true });
    if (cluster.isPrimary) {
      const opts = new ConfigStore(resolve(o.dataDir), overrides).options;
      const requested = o.workers === undefined ? opts.workers : Number(o.workers);
      if (!Number.isInteger(requested) || requested < 0)
        throw new ConfigError(`--workers: expected a whole number (0 = automatic), got "${o.workers}"`);
      const plan = planWorkers(requested, opts, availableParallelism());
      if (plan.reason) process.stdout.write(`${plan.reason}\n`);
      if (plan.workers > 1) {
        const say = (l: string) => process.stdout.write(`${l}\n`);
        process.exit(await runPrimary({ workers: plan.workers, say }));
      }
    }
    await serveOne(o.dataDir, overrides);
  } catch (e) {
    process.stderr.write(
      `voxswitch: ${e instanceof ConfigError ? 'configuration error:\n' : ''}${(e as Error).message}\n`,
    );
    process.exit(1);
  }
}

/** One server in this process: a single-process server or one worker of the cluster. */
async function serveOne(dataDir: string, overrides: Record<string, string>): Promise<void> {
  const index = Number(process.env[WORKER_ENV.index] ?? 0);
  const count = Number(process.env[WORKER_ENV.count] ?? 0);
  const secret = process.env[WORKER_ENV.secret];
  const sipSecret = secret ? Buffer.from(secret, 'hex') : undefined;
  const srv = await startServer({
    dataDir,
    overrides,
    sipSecret,
    handoff: cluster.isWorker && count > 1 && sipSecret ? handoffThroughPrimary(index, count, sipSecret) : undefined,
  });
  // workers after the first stay quiet on stdout: the first prints what every worker listens on
  if (index <= 1) {
    for (const l of srv.services.listeners) process.stdout.write(`listening: ${l.kind} on ${l.address}:${l.port}\n`);
    process.stdout.write(`database: ${srv.services.storage.describe}\n`);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await srv.stop();
    if (index <= 1) process.stdout.write('voxswitch stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () =>
    srv.services.reload().catch((e) => process.stderr.write(`reload failed: ${(e as Error).message}\n`)),
  );
  if (cluster.isWorker) {
    // the primary is gone: this worker stops too
    process.on('disconnect', stop);
    process.send?.({ type: 'ready' } satisfies WorkerMessage);
  }
}

/** A worker's SIP hand-off: its port goes to the primary, the others' ports come from it (node:cluster IPC). */
function handoffThroughPrimary(self: number, count: number, secret: Buffer) {
  let listener: ((ports: Record<string, number>) => void) | undefined;
  let latest: Record<string, number> | undefined;
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type !== 'peers') return;
    latest = m.ports;
    listener?.(m.ports);
  });
  return {
    self,
    count,
    secret,
    announce: (port: number) => process.send?.({ type: 'handoff', port } satisfies WorkerMessage),
    peers: (l: (ports: Record<string, number>) => void) => {
      listener = l;
      if (latest) l(latest);
    },
  };
}
