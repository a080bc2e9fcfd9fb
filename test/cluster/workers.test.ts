/**
 * `voxswitch serve --workers N`: the plan (how many and why), the refusals without Redis or PostgreSQL, and the
 * real thing as a child process on PostgreSQL + Redis: two worker pids answer the API on one port, REGISTER over UDP
 * is answered, a worker killed with SIGKILL is replaced while the other keeps answering, SIGTERM stops everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { get } from 'node:http';
import { planWorkers } from '../../src/cluster/workers.js';
import { ConfigError } from '../../src/config/options.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { freePort } from '../helpers/ports.js';
import { udpAsk } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';
import { redisMissing, REDIS_URL } from '../state/redis.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PG = { redisurl: 'redis://127.0.0.1:6379', dburl: 'postgres://u@h/db' };

test('the worker plan: automatic is one per core with Redis and PostgreSQL, else one saying why', () => {
  assert.deepEqual(planWorkers(0, PG, 4), { workers: 4, reason: 'workers: 4 (automatic: one per core)' });
  assert.equal(planWorkers(0, PG, 0).workers, 1);
  const noRedis = planWorkers(0, { ...PG, redisurl: '' }, 4);
  assert.equal(noRedis.workers, 1);
  assert.match(noRedis.reason!, /needs redisurl:/);
  const sqlite = planWorkers(0, { redisurl: '', dburl: '' }, 4);
  assert.equal(sqlite.workers, 1);
  assert.match(sqlite.reason!, /needs redisurl and dburl on PostgreSQL/);
  assert.deepEqual(planWorkers(1, { redisurl: '', dburl: '' }, 4), { workers: 1 });
  // several when asked, with no warning: dialogs find their worker
  assert.deepEqual(planWorkers(3, PG, 2), { workers: 3 });
  assert.throws(
    () => planWorkers(2, { ...PG, redisurl: '' }, 4),
    (e) => e instanceof ConfigError && /redisurl/.test(e.message),
  );
  assert.throws(
    () => planWorkers(2, { ...PG, dburl: '' }, 4),
    (e) => e instanceof ConfigError && /dburl/.test(e.message),
  );
});

function run(
  args: string[],
  env: Record<string, string> = {},
): ChildProcess & { out: () => string; err: () => string } {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'workers-admin-pw', ...env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return Object.assign(child, { out: () => out, err: () => err });
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve(c.exitCode)
    : new Promise<number | null>((r) => c.once('exit', (code) => r(code)));

test('--workers 2 without redisurl, or on SQLite, is refused naming the option', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-workers-'));
  try {
    const a = run(['--data-dir', dir, '--workers', '2', '--set', 'usesip=false']);
    assert.equal(await exited(a), 1);
    assert.match(a.err(), /--workers 2 needs option "redisurl"/);
    const b = run(['--data-dir', dir, '--workers', '2', '--set', `redisurl=${REDIS_URL}`, '--set', 'usesip=false']);
    assert.equal(await exited(b), 1);
    assert.match(b.err(), /--workers 2 needs option "dburl" on PostgreSQL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `info` on a new connection each time (the cluster balances connections): pid and worker index. */
function info(port: number): Promise<{ pid: string; worker: string }> {
  return new Promise((resolve, reject) => {
    const req = get(
      { host: '127.0.0.1', port, path: '/mvapireq/?apientry=info&format=json', agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            const j = JSON.parse(body) as { status: string; fields: { pid: string; worker: string } };
            if (j.status !== 'OK') return reject(new Error(body));
            resolve({ pid: String(j.fields.pid), worker: String(j.fields.worker) });
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('info timed out')));
  });
}

function register(n: number): string {
  return (
    'REGISTER sip:127.0.0.1 SIP/2.0\r\n' +
    `Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-wk-${n}-${Date.now()};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=wk${n}\r\nTo: <sip:alice@127.0.0.1>\r\n` +
    `Call-ID: wk-${n}-${Date.now()}@test\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5999>\r\n` +
    'Content-Length: 0\r\n\r\n'
  );
}

test('serve --workers 2 on PostgreSQL + Redis: two pids on one port, UDP REGISTER, a killed worker is replaced', async (t) => {
  const missing = await redisMissing();
  if (missing) return t.skip(missing);
  const pg = await freshPgDatabase();
  if ('skip' in pg) return t.skip(pg.skip);
  const dir = mkdtempSync(join(tmpdir(), 'vx-workers-'));
  const apiPort = await freePort();
  const sipPort = await freePort();
  const sets = {
    dburl: pg.url,
    // a database of its own on the Redis server: no other test's bans or counters
    redisurl: `${REDIS_URL}/7`,
    mainaport: String(apiPort),
    apibindaddr: '127.0.0.1',
    sipport: String(sipPort),
    sipbindaddr: '127.0.0.1',
    apilimitip: '0',
    apilimituser: '0',
    apilimitglobal: '0',
    loglevel: 'warn',
    // this test is about sharing the ports; a loaded test machine must not turn answers into overload refusals
    overloaddelay: '0',
  };
  const child = run([
    '--data-dir',
    dir,
    '--workers',
    '2',
    ...Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
  ]);
  try {
    await eventually(() => /workers: 2 ready/.test(child.out()) || child.exitCode !== null, 'workers ready', 60_000);
    const m = /workers: 2 ready \(pids (\d+), (\d+)\)/.exec(child.out());
    assert.ok(m, child.out() + child.err());
    const pids = new Set([m[1], m[2]]);
    // first start ran once: one set of credentials printed
    assert.equal(child.out().match(/=== voxswitch first start ===/g)?.length, 1, child.out());

    const seen = new Map<string, string>();
    await eventually(
      async () => {
        const a = await info(apiPort);
        seen.set(a.pid, a.worker);
        return seen.size === 2;
      },
      'answers from both workers',
      20_000,
    );
    assert.deepEqual(new Set(seen.keys()), pids);
    assert.deepEqual(new Set(seen.values()), new Set(['1', '2']));

    for (let i = 0; i < 6; i++) assert.match(await udpAsk(sipPort, register(i)), /^SIP\/2\.0 401 /);

    // SIGKILL one worker: the other keeps answering, the primary forks a new one
    const victim = m[2]!;
    process.kill(Number(victim), 'SIGKILL');
    await eventually(
      () => /worker 2 \(pid \d+\) ended \(SIGKILL\); restarting/.test(child.out()),
      'restart logged',
      10_000,
    );
    for (let i = 0; i < 4; i++) assert.notEqual((await info(apiPort)).pid, victim);
    assert.match(await udpAsk(sipPort, register(10)), /^SIP\/2\.0 401 /);
    const fresh = new Set<string>();
    await eventually(
      async () => {
        const a = await info(apiPort);
        if (!pids.has(a.pid)) fresh.add(a.pid);
        return fresh.size === 1;
      },
      'the replacement worker answers',
      30_000,
    );

    child.kill('SIGTERM');
    assert.equal(await exited(child), 0, child.err());
    for (const pid of [m[1]!, ...fresh]) assert.throws(() => process.kill(Number(pid), 0), /ESRCH/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
    await pg.drop();
  }
});
