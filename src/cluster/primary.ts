/**
 * The primary of `voxswitch serve --workers N` (node:cluster): forks the workers, each running the whole server
 * (startServer). The API and SIP TCP/TLS/WS listeners are shared by cluster (the primary accepts, round-robin); the
 * UDP sockets share the primary's handle. Worker 1 starts alone first (migrations, first-start admin and its
 * printed credentials happen once), then the others. A worker that dies is forked again after a back-off; SIGTERM
 * and SIGINT stop every worker and then the primary, SIGHUP is passed on (each worker reloads its configuration).
 * Each worker announces the port of its private hand-off socket (127.0.0.1); the primary sends every worker the
 * ports of all running workers whenever one (re)starts or ends, so SIP messages reach the worker that owns them.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';

export interface PrimaryOptions {
  workers: number;
  /** One line for the operator (stdout). */
  say: (line: string) => void;
  /** Back-off of restarts: first delay and cap (ms). */
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Workers still running this long after SIGTERM are killed (ms). */
  stopTimeoutMs?: number;
}

/** What a worker tells the primary: it listens; the port of its private SIP hand-off socket. */
export type WorkerMessage = { type: 'ready' } | { type: 'handoff'; port: number };

/** What the primary tells the workers: the hand-off port of every running worker (index → port). */
export type PrimaryMessage = { type: 'peers'; ports: Record<string, number> };

/**
 * Environment of a worker: its index (1…N), the count N and the secret every worker shares (digest nonces; the
 * hand-off token is derived from it).
 */
export const WORKER_ENV = {
  index: 'VOXSWITCH_WORKER',
  count: 'VOXSWITCH_WORKERS',
  secret: 'VOXSWITCH_SIP_SECRET',
} as const;

export function runPrimary(o: PrimaryOptions): Promise<number> {
  const secret = randomBytes(32).toString('hex');
  const backoff = o.backoffMs ?? 200;
  const backoffMax = o.backoffMaxMs ?? 10_000;
  const byIndex = new Map<number, Worker>();
  const delay = new Map<number, number>();
  const ports = new Map<number, number>();
  const sayPorts = () => {
    const hp = [...ports.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    o.say(`workers: SIP hand-off on 127.0.0.1 ports ${hp.join(', ')}`);
  };
  const tellPeers = () => {
    const m: PrimaryMessage = { type: 'peers', ports: Object.fromEntries(ports) };
    for (const w of byIndex.values()) if (w.isConnected()) w.send(m);
    // a replacement worker's port, once every worker has one again
    if (started && ports.size === o.workers) sayPorts();
  };
  let stopping = false;
  let started = false;

  return new Promise<number>((resolve) => {
    const fork = (index: number): Promise<boolean> =>
      new Promise((ready) => {
        const w = cluster.fork({
          [WORKER_ENV.index]: String(index),
          [WORKER_ENV.count]: String(o.workers),
          [WORKER_ENV.secret]: secret,
        });
        const bornAt = Date.now();
        byIndex.set(index, w);
        w.on('message', (m: WorkerMessage) => {
          if (m?.type === 'ready') ready(true);
          else if (m?.type === 'handoff' && Number.isInteger(m.port)) {
            ports.set(index, m.port);
            tellPeers();
          }
        });
        w.once('exit', (code, signal) => {
          if (byIndex.get(index) === w) {
            byIndex.delete(index);
            if (ports.delete(index) && !stopping) tellPeers();
          }
          ready(false);
          if (stopping) return;
          if (!started) return; // a failed first start: the caller stops everything
          // a worker that lived long gets the shortest back-off again
          const wait = Date.now() - bornAt > 30_000 ? backoff : Math.min(backoffMax, delay.get(index) ?? backoff);
          delay.set(index, Math.min(backoffMax, wait * 2));
          o.say(`worker ${index} (pid ${w.process.pid}) ended (${signal ?? `code ${code}`}); restarting in ${wait} ms`);
          setTimeout(() => {
            if (!stopping) void fork(index);
          }, wait).unref();
        });
      });

    const stopAll = (signal: NodeJS.Signals, code: number) => {
      if (stopping) return;
      stopping = true;
      if (byIndex.size === 0) return resolve(code);
      for (const w of byIndex.values()) w.process.kill(signal);
      setTimeout(() => {
        for (const w of byIndex.values()) w.process.kill('SIGKILL');
      }, o.stopTimeoutMs ?? 15_000).unref();
      const poll = setInterval(() => {
        if (byIndex.size === 0) (clearInterval(poll), resolve(code));
      }, 50);
    };
    process.on('SIGTERM', () => stopAll('SIGTERM', 0));
    process.on('SIGINT', () => stopAll('SIGTERM', 0));
    process.on('SIGHUP', () => {
      for (const w of byIndex.values()) w.process.kill('SIGHUP');
    });

    void (async () => {
      if (!(await fork(1))) return stopAll('SIGTERM', 1);
      const rest = await Promise.all(Array.from({ length: o.workers - 1 }, (_, i) => fork(i + 2)));
      if (rest.some((r) => !r)) return stopAll('SIGTERM', 1);
      started = true;
      const pids = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, w]) => w.process.pid);
      o.say(`workers: ${o.workers} ready (pids ${pids.join(', ')})`);
      if (ports.size) sayPorts();
    })();
  });
}
