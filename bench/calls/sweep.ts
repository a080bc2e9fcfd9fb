/**
 * Offered-rate sweep of call set-ups with overload control (both ends sipp over UDP, the B2BUA of this process):
 *
 *   node dist/bench/calls/sweep.js [--seconds 8] [--from 100] [--step 100] [--overloaddelay 100] [--overloadload 0]
 *     [--overloadqueue 4096] [--warmup RATE] [--capacity H]
 *
 * Offers `from`, `from+step`, … calls/s for `seconds` each (INVITE → 407 → INVITE with digest → 180 → 200 → ACK →
 * BYE) until a step is not clean (a call not completed); the highest clean rate H is the capacity. Then offers 2·H
 * and prints the goodput (completed calls/s, and as a share of H), the share of calls refused with 503 and how fast
 * the 503s came: sipp's response time from sending the INVITE to receiving its 503 (uac_auth_refused.xml, -trace_rtt),
 * which includes the time the INVITE waited in the server's socket buffer. Each step also prints the highest
 * receive-queue reading of the server's UDP socket and the host's 1-minute load average. `--warmup RATE` first offers
 * RATE calls/s for `seconds`, not counted (JIT, caches: a cold server is overloaded by its first step on a busy host);
 * `--capacity H` skips the search and offers 2·H at once (the 503 figures at a capacity measured before).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../../test/helpers/server.js';
import { SCEN, SIPP, TestRouter, freePort, sleep } from '../../test/calls/helpers.js';
import { findTool } from '../../test/helpers/tools.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { B2bua } from '../../src/sip/calls/b2bua.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const SECONDS = arg('seconds', 8);
const FROM = arg('from', 100);
const STEP = arg('step', 100);
const DELAY = arg('overloaddelay', 100);
const LOAD = arg('overloadload', 0);
const QUEUE = arg('overloadqueue', 4096);
const WARMUP = arg('warmup', 0);
const CAPACITY = arg('capacity', 0);
const USERS = 200;

function sipp(args: string[], cwd: string): { kill: () => void; done: Promise<number | null> } {
  const p = spawn(SIPP, args, { cwd, stdio: 'ignore' });
  return { kill: () => p.kill('SIGKILL'), done: new Promise((r) => p.on('close', (code) => r(code))) };
}

async function main(): Promise<void> {
  if (!findTool('sipp')) return console.log('sipp not installed (not on PATH): nothing measured');
  const work = mkdtempSync(join(tmpdir(), 'voxswitch-bench-sweep-'));
  const t = await startTestServer({
    usesip: 'false',
    authfailban: '0',
    overloaddelay: String(DELAY),
    overloadload: String(LOAD),
    overloadqueue: String(QUEUE),
  });
  const s = t.srv.services;
  const o = s.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: -1,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: 100,
    // as src/sipbuild.ts: the queue control refuses new INVITEs in the transport, before they are parsed
    refuseNew: { wait: () => s.overload?.queueWait?.() ?? 0, refused: () => s.overload?.refusedEarly?.() },
  });
  const sip = new SipServer(s, stack, { shed: (cont) => s.overload?.shed('sip', cont) ?? 0 });
  const udpPort = (await sip.start()).find((l) => l.transport === 'udp')!.port;
  s.sip = sip;
  s.overload?.watchUdpPort?.(udpPort);
  const b2bua = new B2bua({ services: s, sip, router: new TestRouter(s), live: s.liveCalls });
  b2bua.start();
  try {
    const lines: string[] = [];
    for (let i = 0; i < USERS; i++) {
      await s.users.create({ username: `c${i}`, password: `pw${i}xx` });
      lines.push(`c${i};[authentication username=c${i} password=pw${i}xx];callee`);
    }
    await s.users.create({ username: 'callee', password: 'calleepw' });
    const inf = join(work, 'callers.csv');
    writeFileSync(inf, 'SEQUENTIAL\n' + lines.join('\n') + '\n');
    const base = [
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-t',
      'u1',
      '-timeout',
      `${SECONDS * 4 + 30}s`,
      '-max_socket',
      '10000',
    ];
    const completed = async () =>
      Number(
        (
          await s.storage.db
            .selectFrom('tb_cdrs')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('reason', 'like', 'normal%')
            .executeTakeFirstOrThrow()
        ).n,
      );

    /** sipp's response times INVITE → 503 (ms) from the _rtt.csv files of the step, removed after reading. */
    const refusalTimes = () => {
      const ms: number[] = [];
      for (const f of readdirSync(work).filter((n) => n.endsWith('_rtt.csv'))) {
        for (const line of readFileSync(join(work, f), 'utf8').split('\n').slice(1)) {
          const v = Number(line.split(';')[1]);
          if (line && Number.isFinite(v)) ms.push(v);
        }
        rmSync(join(work, f));
      }
      return ms.sort((a, b) => a - b);
    };
    const pct = (ms: number[], p: number) => ms[Math.min(ms.length - 1, Math.floor(ms.length * p))] ?? 0;

    /** One step: `rate` calls/s for SECONDS; completed calls, 503 refusals, their response times and wall time. */
    const offer = async (rate: number) => {
      const calls = rate * SECONDS;
      const port = await freePort();
      const u = sipp(['-sf', join(SCEN, 'uas_answer.xml'), '-p', String(port), ...base], work);
      await sleep(700);
      sip.location.update('callee', `reg-callee-${port}`, 1, [
        {
          contact: `sip:callee@127.0.0.1:${port}`,
          expires: 3600,
          transport: 'udp',
          srcIp: '127.0.0.1',
          srcPort: port,
          userAgent: 'sipp',
          q: 1,
        },
      ]);
      const before = { ok: await completed(), refused: s.overload!.stats().refused_sip };
      s.overload!.stats(); // restarts the queue peak
      const t0 = Date.now();
      const c = sipp(
        [`127.0.0.1:${udpPort}`, '-sf', join(SCEN, 'uac_auth_refused.xml'), '-inf', inf, '-m', String(calls)].concat([
          '-r',
          String(rate),
          '-l',
          String(rate * 10),
          '-d',
          '0',
          '-trace_rtt',
          '-rtt_freq',
          '1',
          ...base,
        ]),
        work,
      );
      await c.done;
      const secs = (Date.now() - t0) / 1000;
      await sleep(1000);
      u.kill();
      await u.done;
      sip.location.removeAll('callee', `unreg-callee-${port}`, 1);
      const ok = (await completed()) - before.ok;
      const st = s.overload!.stats();
      const refused = st.refused_sip - before.refused;
      const peak = st.queue_peak_bytes;
      return { rate, calls, ok, refused, secs, times: refusalTimes(), peak, load: loadavg()[0] };
    };

    if (WARMUP > 0) {
      const w = await offer(WARMUP);
      console.log(`warm-up at ${WARMUP}/s (not counted): ${w.ok}/${w.calls} completed, ${w.refused} refused`);
      await sleep(2000);
    }
    let clean = CAPACITY;
    for (let rate = FROM; !CAPACITY; rate += STEP) {
      const r = await offer(rate);
      console.log(
        `offered ${rate}/s × ${SECONDS} s: ${r.ok}/${r.calls} completed in ${r.secs.toFixed(1)} s, ${r.refused} INVITEs ` +
          `refused 503` +
          (r.times.length ? ` (response p99 ${pct(r.times, 0.99)} ms, max ${pct(r.times, 1)} ms)` : '') +
          `; receive queue peak ${(r.peak / 1024).toFixed(0)} KB, load average ${r.load.toFixed(2)}`,
      );
      if (r.ok < r.calls) break;
      clean = rate;
      await sleep(2000);
    }
    if (!clean) return console.log(`no clean step from ${FROM}/s`);
    await sleep(3000);
    const r = await offer(clean * 2);
    const goodput = r.ok / Math.max(SECONDS, r.secs);
    console.log(
      `highest clean rate ${clean}/s; offered ${clean * 2}/s: goodput ${goodput.toFixed(0)} calls/s ` +
        `(${((goodput / clean) * 100).toFixed(0)}% of the clean rate), ${r.ok}/${r.calls} completed in ${r.secs.toFixed(1)} s, ` +
        `${r.refused} INVITEs refused 503 (${((r.refused / r.calls) * 100).toFixed(1)}% of the calls offered); ` +
        `receive queue peak ${(r.peak / 1024).toFixed(0)} KB, load average ${r.load.toFixed(2)}`,
    );
    const within = r.times.filter((v) => v <= 50).length;
    console.log(
      `503 response times seen by sipp (INVITE sent → 503 received): ${r.times.length} measured, ` +
        `p50 ${pct(r.times, 0.5)} ms, p99 ${pct(r.times, 0.99)} ms, max ${pct(r.times, 1)} ms, ` +
        `${r.times.length ? ((within / r.times.length) * 100).toFixed(1) : '-'}% within 50 ms`,
    );
  } finally {
    await b2bua.stop().catch(() => undefined);
    await sip.stop().catch(() => undefined);
    await t.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
