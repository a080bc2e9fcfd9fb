/**
 * bench/ops/backup: an online backup of a database holding 1,000,000 CDRs while the API serves `balance` load.
 * The data dir is made by a first start; the CDRs are written straight into SQLite (one transaction, a prepared
 * statement); then the server runs again, 50 keep-alive connections ask `balance` (salted md5) for a baseline
 * window, and again while the `backup` command runs. Prints the backup's duration and size and the API's
 * requests/s and latency before and during. Usage: npm run bench:backup [-- cdrs seconds]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import autocannon from 'autocannon';
import { freePort, waitFor } from '../lib/http.js';

const CDRS = Number(process.argv[2] ?? 1_000_000);
const SECONDS = Number(process.argv[3] ?? 10);
const KEY = 'benchkey';
const SALT = 'benchsalt';
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

function serve(dir: string, port: number): ChildProcess {
  const sets = ['mainaport=' + port, 'apibindaddr=127.0.0.1', 'usesip=false', 'apiv2key=' + KEY];
  sets.push('apiv2md5salt=' + SALT, 'apilimitip=0', 'apilimituser=0', 'apilimitglobal=0', 'loglevel=warn');
  return spawn(
    process.execPath,
    ['bin/voxswitch.js', 'serve', '--data-dir', dir, ...sets.flatMap((s) => ['--set', s])],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'benchadmin' },
    },
  );
}

function stopped(c: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (c.exitCode !== null) return res();
    c.once('exit', () => res());
    c.kill('SIGTERM');
  });
}

/** Writes `n` CDRs of the bench user into the stopped server's database. */
function fillCdrs(dir: string, n: number): number {
  const t0 = Date.now();
  const db = new Database(join(dir, 'voxswitch.db'));
  db.pragma('journal_mode = WAL');
  const user = db.prepare('SELECT id FROM tb_users WHERE username = ?').get('bench') as { id: number };
  const userId = user.id;
  const ins = db.prepare(
    `INSERT INTO tb_cdrs (callid, caller, callee, userid, route, start_at, connect_at, end_at, duration, billed, cost,
       currency, reason, leg, created_at) VALUES (?, 'bench', ?, ?, 'gw:carrier1', ?, ?, ?, ?, ?, ?, 'USD', 'normal', '', ?)`,
  );
  const base = Date.now() - 86_400_000 * 30;
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const start = base + i * 2000;
      const dur = 10 + (i % 300);
      ins.run(
        `bench-${i}`,
        `3620${(1000000 + (i % 9000000)).toString()}`,
        userId,
        start,
        start + 5000,
        start + 5000 + dur * 1000,
        dur,
        dur,
        dur * 100,
        start,
      );
    }
  })();
  db.close();
  return Date.now() - t0;
}

async function load(port: number, path: () => string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 50,
    duration: seconds,
    requests: [{ method: 'GET', setupRequest: (r: any) => ({ ...r, path: path() }) }],
  } as autocannon.Options);
}

function line(name: string, r: autocannon.Result): string {
  const l = r.latency as unknown as Record<string, number>;
  return `${name.padEnd(22)} ${Math.round(r.requests.average).toString().padStart(6)} req/s  p50 ${l.p50} ms  p99 ${l.p99} ms  max ${l.max} ms  non2xx ${r.non2xx}  errors ${r.errors}`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vx-bench-backup-'));
  let vox: ChildProcess | undefined;
  try {
    const port = await freePort();
    const api = (q: string) => fetch(`http://127.0.0.1:${port}/mvapireq/?${q}`).then((r) => r.text());
    vox = serve(dir, port);
    await waitFor(`http://127.0.0.1:${port}/health`);
    const created = await api('apientry=newuseri&u_username=bench&u_password=benchpw&u_credit=12.5');
    if (!created.endsWith('OK')) throw new Error(`could not create the bench user: ${created}`);
    await stopped(vox);
    const fillMs = fillCdrs(dir, CDRS);
    console.log(`bench/ops/backup: ${CDRS.toLocaleString('en')} CDRs written in ${fillMs} ms; node ${process.version}`);

    vox = serve(dir, port);
    await waitFor(`http://127.0.0.1:${port}/health`, 60_000);
    let n = 0;
    const balance = () => {
      const salt = `${process.pid}x${n++}`;
      const h = md5('ck5Gp' + 'bench' + 'benchpw' + SALT + salt);
      return `/mvapireq/?apientry=balance&authkey=${KEY}&authid=bench&authmd5=${h}&authsalt=${salt}`;
    };
    const check = await api(balance().slice('/mvapireq/?'.length));
    if (!check.endsWith('OK')) throw new Error(`unexpected balance answer: ${JSON.stringify(check)}`);
    await load(port, balance, 2); // warm-up
    const before = await load(port, balance, SECONDS);
    console.log(line('API before the backup', before));

    // the backup starts one second into the second window; the window lasts until the backup is done
    let backupText = '';
    let backupMs = 0;
    const during = load(port, balance, SECONDS);
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    backupText = await api('apientry=backup');
    backupMs = Date.now() - t0;
    const d = await during;
    console.log(line('API during the backup', d));
    console.log(`backup: ${backupMs} ms wall (${backupText.split(/\r\n/)[0]})`);
    if (!backupText.endsWith('OK')) throw new Error(`backup failed: ${backupText}`);
    if (backupMs > (SECONDS - 1) * 1000)
      console.log(`note: the backup outlasted the load window (${SECONDS} s); pass a longer window to cover it`);
    const ratio = Math.round((d.requests.average / before.requests.average) * 100);
    console.log(`API throughput during the backup: ${ratio} % of before`);
  } finally {
    if (vox) await stopped(vox);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
