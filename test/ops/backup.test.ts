/**
 * backup and restore on SQLite: a server with users, balances, ledger entries and CDRs is backed up online through
 * the API; the backup restored into a fresh data dir runs a server that has every user (whose passwords still
 * work: server.key came along), balance, ledger entry and CDR. A second server that is down, rotation, and a
 * corrupt or foreign file refused with nothing written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { setRates } from '../calls/helpers.js';
import { restoreBackup } from '../../src/ops/backup/restore.js';
import type { Services } from '../../src/services.js';

const UNIT = 1_000_000;
const LOCAL = src('127.0.0.1');
const root = fileURLToPath(new URL('../../../', import.meta.url));
let t: TestServer;
let work: string;
let target: string;

async function populate(s: Services): Promise<void> {
  for (const [name, credit] of [
    ['alice', 50],
    ['bob', 20],
    ['carol', 0],
  ] as const) {
    const u = await s.users.create({ username: name, password: `${name}-Secret-1` });
    if (credit) await s.ledger.post({ userId: u.id, amount: credit * UNIT, reason: 'test', ref: `seed:${name}` });
  }
  const alice = (await s.users.byUsername('alice'))!;
  const cur = (await s.ledger.balance(alice.id))!.currency;
  await setRates(s, cur, [{ prefix: '49', price: 6 * UNIT }]);
  const t0 = Date.now() - 3_600_000;
  for (let i = 0; i < 5; i++) {
    const duration = i === 4 ? 0 : 30 + i * 10;
    await s.cdrs.recordCall({
      callid: `bk-${i}`,
      userId: alice.id,
      caller: 'alice',
      callee: `4930123${i}`,
      startAt: t0 + i * 1000,
      connectAt: duration ? t0 + i * 1000 + 500 : null,
      endAt: t0 + i * 1000 + 500 + duration * 1000,
      duration,
    });
  }
}

async function snapshot(s: Services) {
  const db = s.storage.db;
  return {
    users: await db.selectFrom('tb_users').select(['id', 'username', 'credit', 'password_enc']).orderBy('id').execute(),
    ledger: await db.selectFrom('tb_ledger').selectAll().orderBy('id').execute(),
    cdrs: await db.selectFrom('tb_cdrs').selectAll().orderBy('id').execute(),
  };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'vx-backup-'));
  target = join(work, 'second');
  mkdirSync(target);
  t = await startTestServer({ backuptarget: target, backupkeep: '2' });
  await populate(t.srv.services);
});

after(async () => {
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

const backup = () => t.srv.gateway.handle(req('backup', {}, LOCAL));

test('backup through the API, restored into a fresh data dir: every user, balance, ledger entry and CDR', async () => {
  const r = await backup();
  assert.ok(r.ok, r.text);
  assert.match(r.text, /4 users, \d+ ledger entries, 5 CDRs/);
  const file = String(r.fields!.file);
  assert.ok(existsSync(file));
  assert.equal(readdirSync(target).filter((n) => n.endsWith('.tar.gz')).length, 1, 'copied to backuptarget');
  const before = await snapshot(t.srv.services);
  assert.ok(before.ledger.length >= 6, 'seed and call charges are ledger entries');

  const fresh = join(work, 'restored');
  const res = await restoreBackup({ file, dataDir: fresh });
  assert.deepEqual(res.counts, { users: 4, ledger: before.ledger.length, cdrs: 5 });
  assert.equal(readFileSync(join(fresh, 'server.key'), 'utf8'), readFileSync(join(t.dataDir, 'server.key'), 'utf8'));
  assert.equal(readFileSync(join(fresh, 'device.id'), 'utf8'), readFileSync(join(t.dataDir, 'device.id'), 'utf8'));

  const b = await startTestServer({}, fresh);
  try {
    const after = await snapshot(b.srv.services);
    assert.deepEqual(after.users, before.users);
    assert.deepEqual(after.ledger, before.ledger);
    assert.deepEqual(after.cdrs, before.cdrs);
    for (const u of before.users) {
      const bal = await b.srv.services.ledger.balance(Number(u.id));
      assert.equal(bal!.credit, Number(u.credit));
    }
    assert.deepEqual(await b.srv.services.ledger.audit(), []);
    // the restored key decrypts the stored passwords: alice can log in with hers on the restored server
    const login = await b.srv.gateway.handle(
      req('balance', { authkey: API_KEY, authid: 'alice', authpwd: 'alice-Secret-1' }, src('203.0.113.9')),
    );
    assert.ok(login.ok, login.text);
    const dev = await b.srv.gateway.handle(req('deviceid', {}, LOCAL));
    assert.equal(dev.text, t.srv.services.ops.deviceId, 'the installation keeps its id');
  } finally {
    await b.stop();
  }
});

test('a second server that is down: ERROR naming it, the local backup kept', async () => {
  rmSync(target, { recursive: true, force: true });
  const local = t.srv.services.ops.backups.list().length;
  const r = await backup();
  assert.equal(r.ok, false);
  assert.match(r.text, /backuptarget .*second cannot be written: it does not exist.*the local backup is kept/);
  const now = t.srv.services.ops.backups.list();
  assert.ok(now.length >= Math.min(local + 1, 2), 'the local backup is there');
  assert.ok(existsSync(join(t.dataDir, 'backups', now.at(-1)!.name)));
  mkdirSync(target);
});

test('rotation keeps backupkeep backups, here and on the second server', async () => {
  for (let i = 0; i < 3; i++) {
    assert.ok((await backup()).ok);
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(t.srv.services.ops.backups.list().length, 2);
  assert.equal(readdirSync(target).filter((n) => n.endsWith('.tar.gz')).length, 2);
  assert.deepEqual(
    readdirSync(join(t.dataDir, 'backups')).filter((n) => !n.endsWith('.tar.gz')),
    [],
    'no staging or partial file left',
  );
});

test('restore of a corrupt, truncated or foreign file: a clear error, the data dir untouched', async () => {
  const dir = join(work, 'corrupt');
  const junk = join(work, 'junk.tar.gz');
  writeFileSync(junk, 'this is not a backup at all\n'.repeat(50));
  await assert.rejects(restoreBackup({ file: junk, dataDir: dir }), /not a readable voxswitch backup/);
  const good = t.srv.services.ops.backups.list().at(-1)!;
  const bytes = readFileSync(join(t.dataDir, 'backups', good.name));
  const cut = join(work, 'cut.tar.gz');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assert.rejects(
    restoreBackup({ file: cut, dataDir: dir }),
    /not a readable voxswitch backup|damaged|incomplete/,
  );
  assert.deepEqual(readdirSync(dir), [], 'nothing written into the data dir');
  // an existing database is not replaced without --force
  await assert.rejects(
    restoreBackup({ file: join(t.dataDir, 'backups', good.name), dataDir: t.dataDir }),
    /exists: restore into a fresh data dir, or use --force/,
  );
  // the CLI says the same and exits 1
  const cli = spawnSync(process.execPath, [join(root, 'bin', 'voxswitch.js'), 'restore', junk, '--data', dir], {
    encoding: 'utf8',
  });
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /not a readable voxswitch backup/);
});
