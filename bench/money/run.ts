/**
 * bench/money: `transfercredit` calls/s through the HTTP API on SQLite (target >= 2,000/s), against a real
 * server child process with the usage limits off. 60 accounts under one reseller send small random amounts
 * to each other over keep-alive connections (autocannon); every answer is checked (OK vs ERROR), and after the
 * run the ledger is audited (balances == sums of entries, total unchanged).
 * Usage: node <build>/bench/money/run.js [seconds] [connections] [--profile DIR]
 * `--profile DIR` runs the server under `node --cpu-prof` and prints its self time by function (bench/sip/profile.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort, waitFor } from '../lib/http.js';
import { openStorage } from '../../src/storage/db.js';
import { Ledger } from '../../src/domain/billing/ledger.js';
import { summarise } from '../sip/profile.js';

const pi = process.argv.indexOf('--profile');
const PROFILE = pi > 0 ? resolve(process.argv[pi + 1]!) : undefined;
const positional = process.argv.slice(2).filter((_a, i, all) => all[i] !== '--profile' && all[i - 1] !== '--profile');
const SECONDS = Number(positional[0] ?? 10);
const CONNECTIONS = Number(positional[1] ?? 32);
const USERS = 60;
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** CPU time (user + system) a process has used, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(v[11]) + Number(v[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vx-bench-money-'));
  let vox: ChildProcess | undefined;
  try {
    const port = await freePort();
    vox = spawn(
      process.execPath,
      [
        ...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []),
        MAIN,
        'serve',
        '--data-dir',
        dir,
        ...[
          `mainaport=${port}`,
          'apibindaddr=127.0.0.1',
          'usesip=false',
          'apilimitip=0',
          'apilimituser=0',
          'apilimitglobal=0',
          'loglevel=warn',
        ].flatMap((s) => ['--set', s]),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'benchadmin' } },
    );
    const base = `http://127.0.0.1:${port}/mvapireq/`;
    await waitFor(`${base}?apientry=apitest`);
    const get = async (q: Record<string, string>) =>
      (await fetch(`${base}?${new URLSearchParams({ format: 'json', ...q })}`)).json() as Promise<{
        status: string;
        text: string;
        fields?: Record<string, string>;
      }>;
    const res = await get({ apientry: 'newuseri', u_username: 'benchres', u_password: 'respw', u_type: 'reseller' });
    if (res.status !== 'OK') throw new Error(res.text);
    for (let i = 0; i < USERS; i++) {
      const r = await get({
        apientry: 'newuseri',
        u_username: `b${i}`,
        u_password: `pw${i}`,
        u_parentid: String(res.fields!.id),
        u_credit: '1000000',
      });
      if (r.status !== 'OK') throw new Error(r.text);
    }
    const check = await get({
      apientry: 'transfercredit',
      authid: 'b0',
      authpwd: 'pw0',
      username: 'b1',
      credit: '0.01',
    });
    if (check.status !== 'OK') throw new Error(`transfercredit does not work: ${check.text}`);

    let n = 0;
    const path = () => {
      const a = n++ % USERS;
      const b = (a + 1 + ((n * 7919) % (USERS - 1))) % USERS;
      return `/mvapireq/?apientry=transfercredit&authid=b${a}&authpwd=pw${a}&username=b${b}&credit=0.${String(1 + (n % 99)).padStart(2, '0')}`;
    };
    let okAnswers = 0;
    let errAnswers = 0;
    let firstError = '';
    const onResponse = (_status: number, body: string) => {
      if (body.endsWith('OK')) okAnswers++;
      else {
        errAnswers++;
        firstError ||= body.slice(0, 200);
      }
    };
    console.log(
      `bench/money: transfercredit over HTTP keep-alive, ${CONNECTIONS} connections, ${SECONDS} s, SQLite, node ${process.version}`,
    );
    await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: 8,
      duration: 2,
      requests: [{ setupRequest: (r: any) => ({ ...r, path: path() }) }],
    } as autocannon.Options);
    okAnswers = errAnswers = 0;
    const cpu0 = cpuMs(vox.pid!);
    const r = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [{ setupRequest: (q: any) => ({ ...q, path: path() }), onResponse }],
    } as autocannon.Options);
    const cpu = cpuMs(vox.pid!) - cpu0;
    const l = r.latency as unknown as Record<string, number>;
    const rate = Math.round(okAnswers / SECONDS);
    console.log(
      `transfercredit: ${Math.round(r.requests.average)} calls/s (${rate} OK transfers/s; target >= 2000)   p50 ${l.p50} ms  p99 ${l.p99} ms  max ${l.max} ms`,
    );
    console.log(
      `server CPU: ${((cpu * 1000) / Math.max(1, okAnswers + errAnswers)).toFixed(0)} µs per answer ` +
        `(${(cpu / 1000).toFixed(1)} s in ${SECONDS} s; on a shared machine this is the figure to compare)`,
    );
    console.log(
      `answers: ${okAnswers} OK, ${errAnswers} ERROR${firstError ? ` (first: ${JSON.stringify(firstError)})` : ''}, errors ${r.errors}, timeouts ${r.timeouts}`,
    );
    vox.kill('SIGTERM');
    await new Promise((res2) => vox!.once('exit', res2));
    vox = undefined;
    if (PROFILE) {
      const f = readdirSync(PROFILE)
        .filter((x) => x.endsWith('.cpuprofile'))
        .sort()
        .at(-1);
      if (f) console.log(`profile ${join(PROFILE, f)}, self time by function:\n${summarise(join(PROFILE, f), 30)}`);
    }
    const s = await openStorage('', dir);
    try {
      const mism = await new Ledger(s.db).audit();
      const rows = await s.db.selectFrom('tb_users').select('credit').where('username', 'like', 'b%').execute();
      const total = rows.reduce((x, q) => x + Number(q.credit), 0);
      const entries = await s.db
        .selectFrom('tb_ledger')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('reason', '=', 'transfercredit')
        .executeTakeFirstOrThrow();
      console.log(
        `ledger after the run: ${Number(entries.n)} transfer entries, ${mism.length} balance/ledger mismatches, total ${total === USERS * 1_000_000 * 1_000_000 ? 'conserved' : `CHANGED (${total})`}`,
      );
      if (mism.length || total !== USERS * 1e12 || errAnswers) process.exitCode = 1;
    } finally {
      await s.close();
    }
  } finally {
    if (vox) vox.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
