/**
 * Crash safety: the real server as a child process takes a load of transfercredit calls over HTTP and is killed
 * with SIGKILL in the middle; restarted on the same data dir it still holds: every balance equals the sum of its
 * entries, the total is unchanged, none is negative, no transfer is half-written, and every transfer that was
 * answered OK before the crash is there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStorage } from '../../src/storage/db.js';
import { Ledger } from '../../src/domain/billing/ledger.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const USERS = 12;

/** Starts `voxswitch serve` on port 0 and reads the port it bound from its "listening:" line. */
async function serve(dir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--data-dir',
      dir,
      ...[
        'mainaport=0',
        'apibindaddr=127.0.0.1',
        'usesip=false',
        'apilimitip=0',
        'apilimituser=0',
        'apilimitglobal=0',
        'loglevel=warn',
      ].flatMap((s) => ['--set', s]),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'crash-admin-pw' } },
  );
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening: tcp \(http[^\n]* on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', () => (clearTimeout(timer), reject(new Error(`server exited: ${err}`))));
  });
  child.stdout!.resume();
  const base = `http://127.0.0.1:${port}/mvapireq/`;
  await fetch(`${base}?apientry=apitest`);
  return { child, base };
}

async function call(
  base: string,
  params: Record<string, string>,
): Promise<{ status: string; text: string; fields?: Record<string, string> }> {
  const r = await fetch(`${base}?${new URLSearchParams({ format: 'json', ...params })}`);
  return (await r.json()) as { status: string; text: string; fields?: Record<string, string> };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

test('SIGKILL during a transfercredit load: the ledger survives consistent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-crash-'));
  let child: ChildProcess | undefined;
  try {
    let srv = await serve(dir);
    child = srv.child;
    const res = await call(srv.base, {
      apientry: 'newuseri',
      u_username: 'res',
      u_password: 'respw',
      u_type: 'reseller',
    });
    assert.equal(res.status, 'OK', res.text);
    let total = 0;
    for (let i = 0; i < USERS; i++) {
      const r = await call(srv.base, {
        apientry: 'newuseri',
        u_username: `c${i}`,
        u_password: `pw${i}`,
        u_parentid: String(res.fields!.id),
        u_credit: '50',
      });
      assert.equal(r.status, 'OK', r.text);
      total += 50_000_000;
    }

    const acked: string[] = [];
    let failedAfterKill = 0;
    let stop = false;
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    let workerError: unknown;
    const workers = Array.from({ length: 24 }, async () => {
      while (!stop) {
        const a = rnd(USERS);
        const b = (a + 1 + rnd(USERS - 1)) % USERS;
        try {
          const credit = `${rnd(5)}.${String(1 + rnd(999_999)).padStart(6, '0')}`;
          let r;
          try {
            r = await call(srv.base, {
              apientry: 'transfercredit',
              authid: `c${a}`,
              authpwd: `pw${a}`,
              username: `c${b}`,
              credit,
            });
          } catch {
            failedAfterKill++;
            return;
          }
          if (r.status === 'OK') acked.push(r.fields!.ref!);
          // an overloaded server refuses without moving money (the audit below checks that too)
          else if (!/^(insufficient credit|server overloaded)/.test(r.text))
            throw new Error(`unexpected answer: ${r.text}`);
        } catch (e) {
          workerError ??= e;
          return;
        }
      }
    });
    // kill once the load is well under way
    const deadline = Date.now() + 15_000;
    while (acked.length < 300 && !workerError && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    // the load goes on until the process has gone (answers already sent before it died still arrive)
    await exited(child);
    stop = true;
    await Promise.all(workers);
    assert.equal(workerError, undefined);
    assert.ok(acked.length >= 300, `only ${acked.length} transfers acknowledged in 15 s`);
    assert.equal(child.signalCode, 'SIGKILL');
    assert.ok(failedAfterKill > 0, 'requests were in flight when the server died');

    // restart on the same data dir: it answers and transfers still work
    srv = await serve(dir);
    child = srv.child;
    const after = await call(srv.base, { apientry: 'balance', authid: 'c0', authpwd: 'pw0' });
    assert.equal(after.status, 'OK', after.text);
    child.kill('SIGTERM');
    await exited(child);
    child = undefined;

    const s = await openStorage('', dir);
    try {
      const rows = await s.db.selectFrom('tb_users').select(['id', 'credit']).where('username', 'like', 'c%').execute();
      assert.equal(rows.length, USERS);
      assert.equal(
        rows.reduce((x, r) => x + Number(r.credit), 0),
        total,
        'total conserved',
      );
      for (const r of rows) assert.ok(Number(r.credit) >= 0);
      assert.deepEqual(await new Ledger(s.db).audit(), [], 'balances equal their ledger sums');
      const refs = await s.db
        .selectFrom('tb_ledger')
        .select(['ref', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.sum<number>('amount').as('net')])
        .where('reason', '=', 'transfercredit')
        .groupBy('ref')
        .execute();
      for (const r of refs) assert.deepEqual([Number(r.n), Number(r.net)], [2, 0], `transfer ${r.ref} is whole`);
      const stored = new Set(refs.map((r) => r.ref));
      const lost = acked.filter((r) => !stored.has(r));
      assert.deepEqual(lost, [], 'every acknowledged transfer survived the crash');
      assert.ok(stored.size >= acked.length);
      console.log(
        `crash test: ${acked.length} transfers acknowledged before SIGKILL, ${stored.size} in the ledger after restart`,
      );
    } finally {
      await s.close();
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
