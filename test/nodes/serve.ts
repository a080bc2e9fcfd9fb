/**
 * `voxswitch serve` as a child process for the several-nodes tests and bench/nodes: SIP on a free UDP port of
 * 127.0.0.1, no API listener, the given `--set` options, the shared state under the run's key prefix
 * (VOXSWITCH_STATE_PREFIX). `kill()` is a kill -9; `stop()` a SIGTERM and the wait for the exit.
 */
import { resolve } from 'node:path';
import { spawnTool, waitBound, type Running } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

export interface Served {
  port: number;
  pid: number;
  run: Running;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function serve(dataDir: string, sets: Record<string, string>, prefix: string): Promise<Served> {
  process.env.VOXSWITCH_STATE_PREFIX = prefix;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // one process per node: on PostgreSQL + Redis the automatic worker count would be one per core
    const all = {
      ...{ sipport: String(port), sipbindaddr: '127.0.0.1', usemainaport: 'false', loglevel: 'warn', workers: '1' },
      ...sets,
    };
    const args = [resolve(process.cwd(), 'bin/voxswitch.js'), 'serve', '--data-dir', dataDir];
    for (const [k, v] of Object.entries(all)) args.push('--set', `${k}=${v}`);
    const run = spawnTool(process.execPath, args, undefined, 30 * 60_000);
    try {
      await waitBound(run, port, 'udp', 30_000);
    } catch (e) {
      if (attempt < 3 && /EADDRINUSE/.test(run.output())) continue;
      throw e;
    }
    const end = async (sig: NodeJS.Signals) => {
      if (!run.exited()) run.child.kill(sig);
      await run.done;
    };
    return { port, pid: run.child.pid!, run, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
  }
}
