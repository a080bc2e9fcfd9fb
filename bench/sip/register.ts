/**
 * Registrar capacity: REGISTER with digest over UDP (REGISTER → 401 → REGISTER+Authorization → 200), offered by sipp
 * in increasing steps to voxswitch and to Kamailio in the same run; each side's highest clean rate (0 failed,
 * retransmissions < 2% of the requests sent, at least 90% of the offered rate completed) and the ratio.
 *
 *   node dist/bench/sip/register.js [--users 10000] [--start 2000] [--step 2000] [--max 30000] [--seconds 4]
 *       [--workers N] [--no-kamailio] [--kamailio-cfg PATH] [--profile DIR] [--memory 100000]
 *       [--baseline PATH/bin/voxswitch.js] [--bin PATH/bin/voxswitch.js] [--set k=v ...]
 *       [--memory-only] [--memory-data DIR] [--memory-rate R] [--expires S] [--snapshot DIR] [--logs]
 *
 * voxswitch runs as `voxswitch serve` (a child process, SQLite data dir in /tmp, users u0..uN with password pw-uN
 * created beforehand); `--workers N` is passed on to `serve`. `--profile DIR` runs the server under
 * `node --cpu-prof` and summarises the profile's self time by function (bench/sip/profile.ts). Kamailio runs the
 * shared benchmark configuration `../shared/bench/kamailio-registrar.cfg` (override with --kamailio-cfg) with
 * children = cores; it is installed with `apt-get install -y kamailio` when missing. `--memory N` then registers N
 * users on a server in this process and reports heap (after a full GC) and rss, per 100,000 users. `--baseline`
 * also steps another build of voxswitch (e.g. the main branch's) in the same run, on the same data; `--bin` runs
 * another build instead of this tree's (e.g. to profile it). `--set k=v` (repeatable) goes to the data dir set-up
 * and to `serve`: several workers need `--set dburl=postgres://… --set redisurl=redis://…`.
 * `--logs` steps voxswitch with logging off (loglevel=silent) and at loglevel=info on the same data, in alternating
 * order over `--logs-rounds N` rounds (default 2), and prints the ratios (the cost of logging on the REGISTER path).
 *
 * `--memory-only` skips the rate steps. `--memory-rate R` registers at R/s (default 2000: Timer J then holds
 * 32 s × 4000 finals, some 60 MB, at the end of the run). `--memory-data DIR` keeps the memory run's data dir (its N users) in DIR and
 * reuses it when it exists (creating 100,000 users takes minutes). The heap and rss are measured once Timer J has
 * let go of the transactions ("registered"), and again 155 s after the last REGISTER ("settled": the accounts have
 * left the authentication cache, the bindings are still there). `--expires S` registers with Expires: S (and a
 * nonce lifetime of S): the second measurement ("expired") then comes after every registration, nonce and cached
 * account has expired (what is left is a leak). `--snapshot DIR` writes a heap snapshot after each measurement
 * (and `--snapshot-loaded` one right after the last REGISTER, Timer J's transactions still held).
 */
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runStep, writeUsersCsv, SCENARIO, SIPP, type StepResult } from './sipp.js';
import {
  cpuSeconds,
  prepareDataDir,
  rssMB,
  startKamailio,
  startVoxswitch,
  KAMAILIO_CFG,
  type Target,
} from './targets.js';
import { summarise } from './profile.js';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
function sarg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const USERS = arg('users', 10_000);
const START = arg('start', 2000);
const STEP = arg('step', 2000);
const MAX = arg('max', 30_000);
const SECONDS = arg('seconds', 4);
const WORKERS = sarg('workers') ? Number(sarg('workers')) : undefined;
const PROFILE = sarg('profile');
const MEMORY = arg('memory', 0);
const KCFG = resolve(sarg('kamailio-cfg') ?? KAMAILIO_CFG);
const BASELINE = sarg('baseline');
const BIN = sarg('bin');
const SETS = process.argv.flatMap((a, i) => (a === '--set' && process.argv[i + 1] ? [process.argv[i + 1]!] : []));
const MEMORY_ONLY = process.argv.includes('--memory-only');
const MEMORY_DATA = sarg('memory-data');
const EXPIRES = arg('expires', 0);
const MEMORY_RATE = arg('memory-rate', 2000);
const SNAPSHOT = sarg('snapshot');
const LOGS = process.argv.includes('--logs');

function clean(r: StepResult): boolean {
  return r.failed === 0 && r.retransPct < 2 && r.achieved >= 0.9 * r.rate;
}

function line(r: StepResult): string {
  return (
    `  offered ${String(r.rate).padStart(6)}/s: ${r.ok}/${r.calls} ok, ${r.failed} failed, ` +
    `${r.retrans} retransmissions (${r.retransPct.toFixed(2)}%), ${r.achieved.toFixed(0)}/s achieved` +
    (clean(r) ? '' : '  ← not clean')
  );
}

/** Offers increasing rates until a step is not clean; the best clean step, or null. */
/** CPU seconds of the server per step rate (the clean steps of its last `stepped` run), to compare two runs. */
const cpuByRate = new Map<Target, Map<number, { cpu: number; ok: number }>>();

async function stepped(t: Target, csv: string, dir: string): Promise<StepResult | null> {
  console.log(`${t.name} on udp 127.0.0.1:${t.port}`);
  // warm-up (first registrations of every user, JIT): not counted
  const w = await runStep(t.port, csv, 2000, Math.max(2, Math.ceil(USERS / 2000)), dir);
  console.log(`  warm-up ${w.ok} ok, ${w.failed} failed`);
  if (w.failed) serverSaid(t);
  let best: StepResult | null = null;
  const cpu = new Map<number, { cpu: number; ok: number }>();
  cpuByRate.set(t, cpu);
  for (let rate = START; rate <= MAX; rate += STEP) {
    const c0 = cpuSeconds(t.pid);
    const r = await runStep(t.port, csv, rate, SECONDS, dir);
    const used = cpuSeconds(t.pid) - c0;
    console.log(`${line(r)}, server cpu ${((1e6 * used) / Math.max(1, r.ok)).toFixed(0)} µs/registration`);
    if (!clean(r)) {
      serverSaid(t);
      break;
    }
    cpu.set(rate, { cpu: used, ok: r.ok });
    best = r;
    await new Promise((res) => setTimeout(res, 500));
  }
  console.log(`  rss of ${t.name} (with its child processes): ${rssMB(t.pid).toFixed(0)} MB`);
  return best;
}

/** The server's last warnings (pino JSON lines: their messages, counted), when it wrote any. */
function serverSaid(t: Target): void {
  const msgs = (t.output?.() ?? '').split('\n').flatMap((l) => /"msg":"([^"]*)"/.exec(l)?.[1] ?? []);
  for (const [m, n] of countOf(msgs.slice(-2000))) console.log(`  server: ${n} × ${m}`);
}

function countOf(items: string[]): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, 6);
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  const g = runInNewContext('gc') as () => void;
  g();
  g();
}

/** register_auth.xml with another Expires value. */
function scenarioWithExpires(dir: string, seconds: number): string {
  const f = join(dir, 'register_auth.xml');
  writeFileSync(f, readFileSync(SCENARIO, 'utf8').replaceAll('Expires: 3600', `Expires: ${seconds}`));
  return f;
}

/**
 * Registers MEMORY users on a server in this process (so that the heap can be measured after a full GC), waits
 * until the transactions' Timer J (32 s) has let go of them, and prints heap and rss against the empty server.
 */
async function memory(dir: string): Promise<void> {
  const users = Array.from({ length: MEMORY }, (_, i) => `m${i}`);
  const data = MEMORY_DATA ? resolve(MEMORY_DATA) : join(dir, 'mem-data');
  const t0 = Date.now();
  if (!MEMORY_DATA || !existsSync(join(data, 'voxswitch.conf'))) {
    await prepareDataDir(data, users);
    console.log(`memory: created ${MEMORY} users in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } else console.log(`memory: reusing the users of ${data}`);
  const overrides: Record<string, string> = {
    sipport: '0',
    sipbindaddr: '127.0.0.1',
    usemainaport: 'false',
    authfailban: '0',
  };
  if (EXPIRES) Object.assign(overrides, { sipnoncettl: String(EXPIRES), sipminexpires: String(Math.min(60, EXPIRES)) });
  const srv = await startServer({
    dataDir: data,
    overrides,
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  try {
    const port = srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
    gc();
    const before = process.memoryUsage();
    const mdir = join(dir, 'mem');
    mkdirSync(mdir, { recursive: true });
    const csv = writeUsersCsv(mdir, users);
    const scenario = EXPIRES ? scenarioWithExpires(mdir, EXPIRES) : SCENARIO;
    const t1 = Date.now();
    let peak = 0;
    let peakHeap = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      peakHeap = Math.max(peakHeap, m.heapTotal);
    }, 200);
    const r = await runStep(port, csv, MEMORY_RATE, MEMORY / MEMORY_RATE, mdir, scenario);
    if (SNAPSHOT && process.argv.includes('--snapshot-loaded')) {
      mkdirSync(SNAPSHOT, { recursive: true });
      console.log(`  heap snapshot ${writeHeapSnapshot(join(resolve(SNAPSHOT), `loaded-${Date.now()}.heapsnapshot`))}`);
    }
    await new Promise((res) => setTimeout(res, 34_000));
    const mb = (n: number) => (n / 1048576).toFixed(0);
    const per = (n: number) => ((n * 100_000) / 1048576 / Math.max(1, r.ok)).toFixed(0);
    const report = (label: string) => {
      gc();
      const m = process.memoryUsage();
      const held = srv.services.sip?.location.size();
      console.log(
        `memory ${label}: ${r.ok} of ${MEMORY} registered (${r.failed} failed), ${held?.bindings ?? '?'} bindings ` +
          `held; heap ${mb(before.heapUsed)} → ${mb(m.heapUsed)} MB (+${per(m.heapUsed - before.heapUsed)} MB ` +
          `per 100,000), rss ${mb(before.rss)} → ${mb(m.rss)} MB (+${per(m.rss - before.rss)} MB per ` +
          `100,000), heap total ${mb(before.heapTotal)} → ${mb(m.heapTotal)} MB (peak ${mb(peakHeap)}), external ` +
          `${mb(m.external)} MB, rss peak ${mb(peak)} MB; ` +
          'limit 300 MB per node',
      );
      if (SNAPSHOT) {
        mkdirSync(SNAPSHOT, { recursive: true });
        console.log(
          `  heap snapshot ${writeHeapSnapshot(join(resolve(SNAPSHOT), `${label}-${Date.now()}.heapsnapshot`))}`,
        );
      }
    };
    report('registered');
    clearInterval(sampler);
    // the authentication cache keeps an account up to 4 × 30 s after its last look-up, swept every 30 s; with
    // --expires, every binding and nonce has expired EXPIRES s after the last REGISTER
    const wait = t1 + Math.max(EXPIRES + 3, 155) * 1000 + r.seconds * 1000 - Date.now();
    await new Promise((res) => setTimeout(res, Math.max(0, wait)));
    report(EXPIRES ? 'expired' : 'settled');
  } finally {
    await srv.stop();
  }
}

const LOG_ROUNDS = arg('--logs-rounds', 2);

/**
 * `--logs`: the same steps with logging off (loglevel=silent) and at info, on the same data, in alternating order
 * over `--logs-rounds` rounds (off then info, then info then off: a later run on the same data dir is not favoured).
 * Prints each round's highest clean rates and the server CPU per registration over the steps both passed clean;
 * answers the first logs-off result.
 */
async function logsCompare(dir: string, csv: string): Promise<StepResult | null> {
  type Run = { best: StepResult | null; cpu: Map<number, { cpu: number; ok: number }> };
  const fmtR = (r: StepResult | null) => (r ? `${r.achieved.toFixed(0)}/s (step ${r.rate}/s)` : 'none');
  const ratios: number[] = [];
  const costs: number[] = [];
  let first: StepResult | null = null;
  for (let round = 1; round <= LOG_ROUNDS; round++) {
    const order = round % 2 === 1 ? ['silent', 'info'] : ['info', 'silent'];
    const runs: Record<string, Run> = {};
    for (const level of order) {
      const t = await startVoxswitch({
        dataDir: join(dir, 'data'),
        workers: WORKERS,
        bin: BIN,
        sets: [...SETS, `loglevel=${level}`],
        label: `voxswitch logs ${level === 'silent' ? 'off' : 'info'} (round ${round})`,
      });
      try {
        runs[level] = { best: await stepped(t, csv, dir), cpu: cpuByRate.get(t)! };
      } finally {
        await t.stop();
      }
    }
    const off = runs.silent!;
    const on = runs.info!;
    first ??= off.best;
    console.log(
      `round ${round} (${order.join(' then ')}): highest clean rate off ${fmtR(off.best)}, info ${fmtR(on.best)}`,
    );
    if (off.best && on.best) ratios.push(on.best.achieved / off.best.achieved);
    const shared = [...off.cpu.keys()].filter((k) => on.cpu.has(k));
    const per = (m: Run['cpu']) =>
      shared.reduce((a, k) => a + m.get(k)!.cpu, 0) /
      Math.max(
        1,
        shared.reduce((a, k) => a + m.get(k)!.ok, 0),
      );
    if (shared.length) {
      costs.push(per(on.cpu) / per(off.cpu) - 1);
      console.log(
        `  server cpu per registration over ${shared.length} shared clean step(s): off ${(per(off.cpu) * 1e6).toFixed(1)} µs, ` +
          `info ${(per(on.cpu) * 1e6).toFixed(1)} µs`,
      );
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  if (ratios.length)
    console.log(`ratio logs info/off, mean of ${ratios.length} round(s): ${(100 * mean(ratios)).toFixed(0)}%`);
  if (costs.length)
    console.log(`cpu cost of logging, mean of ${costs.length} round(s): ${(100 * mean(costs)).toFixed(1)}%`);
  return first;
}

/** The rate steps: voxswitch, the baseline, Kamailio. */
async function rates(dir: string): Promise<void> {
  const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
  const csv = writeUsersCsv(dir, users);
  console.log(
    `REGISTER+digest over UDP, ${USERS} users, steps ${START}/s + ${STEP}/s up to ${MAX}/s, ${SECONDS} s each; ` +
      'clean = 0 failed, retransmissions < 2%, >= 90% of the offered rate completed',
  );
  const t0 = Date.now();
  await prepareDataDir(join(dir, 'data'), users, SETS);
  console.log(`created ${USERS} users in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (PROFILE) mkdirSync(PROFILE, { recursive: true });
  let vbest: StepResult | null;
  let voxName = 'voxswitch logs off (round 1)';
  if (LOGS) vbest = await logsCompare(dir, csv);
  else {
    const vox = await startVoxswitch({
      dataDir: join(dir, 'data'),
      workers: WORKERS,
      profileDir: PROFILE,
      bin: BIN,
      sets: SETS,
    });
    voxName = vox.name;
    try {
      vbest = await stepped(vox, csv, dir);
    } finally {
      await vox.stop();
    }
  }
  let bbest: StepResult | null | undefined;
  if (BASELINE) {
    const b = await startVoxswitch({
      dataDir: join(dir, 'data'),
      workers: WORKERS,
      bin: BASELINE,
      label: 'baseline',
      sets: SETS,
    });
    try {
      bbest = await stepped(b, csv, dir);
    } finally {
      await b.stop();
    }
  }
  let kbest: StepResult | null | undefined;
  if (!process.argv.includes('--no-kamailio')) {
    const kdir = join(dir, 'kamailio');
    mkdirSync(kdir);
    const k = await startKamailio(KCFG, kdir);
    if (typeof k === 'string') console.log(`kamailio: not run: ${k}`);
    else
      try {
        kbest = await stepped(k, csv, kdir);
      } finally {
        await k.stop();
      }
  }
  const fmt = (r: StepResult | null | undefined) => (r ? `${r.achieved.toFixed(0)}/s (step ${r.rate}/s)` : 'none');
  console.log(`highest clean rate: ${voxName} ${fmt(vbest)}`);
  if (bbest !== undefined) console.log(`highest clean rate: baseline ${BASELINE} ${fmt(bbest)}`);
  if (kbest !== undefined) {
    console.log(`highest clean rate: kamailio ${fmt(kbest)}`);
    if (vbest && kbest)
      console.log(`ratio voxswitch/kamailio: ${((100 * vbest.achieved) / kbest.achieved).toFixed(0)}%`);
  }
  if (PROFILE) {
    const f = readdirSync(PROFILE)
      .filter((x) => x.endsWith('.cpuprofile'))
      .sort()
      .at(-1);
    if (f) console.log(`profile ${join(PROFILE, f)}, self time by function:\n${summarise(join(PROFILE, f), 25)}`);
  }
}

async function main(): Promise<void> {
  if (!existsSync(SIPP)) throw new Error('sipp is not installed (/usr/bin/sipp)');
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-bench-reg-'));
  process.env.VOXSWITCH_ADMIN_PASSWORD = 'bench-admin-pw';
  try {
    if (!MEMORY_ONLY) await rates(dir);
    if (MEMORY) await memory(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
