/**
 * Call benchmark: both ends are sipp over UDP, the server in between is the B2BUA of this process.
 *
 *   node .build-X/bench/calls/run.js [--calls 3000] [--rate 500] [--concurrent 5000] [--hold-rate 500]
 *
 * 1. setups/s: `calls` calls (INVITE → 407 → INVITE with digest → 180 → 200 → ACK → BYE → 200) from 200 caller
 *    accounts to one registered callee (a sipp UAS), offered at `rate`/s; prints completed calls, wall time,
 *    calls/s and the CDRs written (one per call).
 * 2. concurrency: `concurrent` calls set up at `hold-rate`/s and held; prints how many were connected at once and
 *    the process memory (RSS, heap) then; all are then ended through the B2BUA (BYE both legs, CDRs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCallEnv, SCEN, SIPP, freePort, registerAt, sleep } from '../../test/calls/helpers.js';
import { findTool } from '../../test/helpers/tools.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CALLS = arg('calls', 3000);
const RATE = arg('rate', 500);
const CONC = arg('concurrent', 5000);
const HOLD_RATE = arg('hold-rate', 500);
const USERS = 200;

function sipp(args: string[], cwd: string): { p: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const p = spawn(SIPP, args, { cwd });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  const done = new Promise<{ code: number | null; out: string }>((r) => p.on('close', (code) => r({ code, out })));
  return { p, done };
}

async function main(): Promise<void> {
  if (!findTool('sipp')) {
    console.log('sipp not installed (not on PATH): nothing measured');
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'voxswitch-bench-calls-'));
  const env = await startCallEnv({});
  const s = env.services;
  try {
    const lines: string[] = [];
    for (let i = 0; i < USERS; i++) {
      await s.users.create({ username: `c${i}`, password: `pw${i}xx` });
      lines.push(`c${i};[authentication username=c${i} password=pw${i}xx];callee`);
    }
    await s.users.create({ username: 'callee', password: 'calleepw' });
    const inf = join(work, 'callers.csv');
    writeFileSync(inf, 'SEQUENTIAL\n' + lines.join('\n') + '\n');
    const base = ['-i', '127.0.0.1', '-nostdin', '-t', 'u1', '-timeout', '300s', '-max_socket', '10000'];

    // ---- 1. setups per second
    {
      const port = await freePort();
      const u = sipp(['-sf', join(SCEN, 'uas_answer.xml'), '-p', String(port), '-m', String(CALLS), ...base], work);
      await sleep(700);
      registerAt(env, 'callee', port);
      const t0 = process.hrtime.bigint();
      const c = sipp(
        [
          '127.0.0.1:' + env.udpPort,
          '-sf',
          join(SCEN, 'uac_auth.xml'),
          '-inf',
          inf,
          '-m',
          String(CALLS),
          '-r',
          String(RATE),
          '-l',
          '2000',
          '-d',
          '0',
          ...base,
        ],
        work,
      );
      const rc = await c.done;
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      await sleep(500);
      u.p.kill('SIGKILL');
      await u.done;
      const n = await s.storage.db
        .selectFrom('tb_cdrs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('reason', 'like', 'normal%')
        .executeTakeFirstOrThrow();
      const ok = Number(n.n);
      console.log(
        `setups: ${CALLS} offered at ${RATE}/s, ${ok} completed (CDR "normal") in ${secs.toFixed(2)} s → ${(ok / secs).toFixed(0)} calls/s (sipp exit ${rc.code})`,
      );
      const st = s.storage.db;
      const dup = await st
        .selectFrom('tb_cdrs')
        .select(['callid'])
        .groupBy(['callid', 'leg'])
        .having((eb) => eb.fn.countAll(), '>', 1)
        .execute();
      console.log(
        `  CDRs per call: ${dup.length === 0 ? 'one each' : dup.length + ' duplicated!'}; live calls left: ${env.b2bua.live.list().length}`,
      );
    }

    // ---- 2. concurrent calls held
    {
      const port = await freePort();
      const u = sipp(['-sf', join(SCEN, 'uas_answer.xml'), '-p', String(port), '-m', String(CONC), ...base], work);
      await sleep(700);
      registerAt(env, 'callee', port);
      global.gc?.();
      const mem0 = process.memoryUsage();
      const c = sipp(
        [
          '127.0.0.1:' + env.udpPort,
          '-sf',
          join(SCEN, 'uac_auth.xml'),
          '-inf',
          inf,
          '-m',
          String(CONC),
          '-r',
          String(HOLD_RATE),
          '-l',
          String(CONC),
          '-d',
          '600000',
          ...base,
        ],
        work,
      );
      const t0 = Date.now();
      let peak = 0;
      const deadline = t0 + Math.max(30_000, (CONC / HOLD_RATE) * 1000 * 3);
      while (Date.now() < deadline) {
        const n = env.b2bua.live.stats().connected;
        peak = Math.max(peak, n);
        if (n >= CONC) break;
        await sleep(500);
      }
      await sleep(1000);
      global.gc?.();
      const mem = process.memoryUsage();
      const n = env.b2bua.live.stats().connected;
      console.log(
        `concurrency: ${n} calls connected at once (peak ${peak}, target ${CONC}) after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      console.log(
        `  memory: rss ${(mem.rss / 2 ** 20).toFixed(0)} MB (before ${(mem0.rss / 2 ** 20).toFixed(0)} MB), heap used ${(mem.heapUsed / 2 ** 20).toFixed(0)} MB (before ${(mem0.heapUsed / 2 ** 20).toFixed(0)} MB) → ${n ? ((mem.heapUsed - mem0.heapUsed) / n / 1024).toFixed(1) : '-'} KB heap per call`,
      );
      const te = Date.now();
      const ended = env.b2bua.live.list().length;
      c.p.kill('SIGKILL');
      u.p.kill('SIGKILL');
      await Promise.all([c.done, u.done]);
      await env.b2bua.stop();
      console.log(
        `  ${ended} calls ended and billed through the B2BUA in ${((Date.now() - te) / 1000).toFixed(1)} s; live left: ${env.b2bua.live.list().length}`,
      );
    }
  } finally {
    await env.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
