/** The storage layer and the services on it, run on SQLite and on PostgreSQL with the same code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { SecretBox } from '../../src/domain/accounts/secrets.js';
import { UserService, UserInputError } from '../../src/domain/accounts/users.js';
import { UserType } from '../../src/domain/accounts/types.js';
import { Ledger, InsufficientCredit } from '../../src/domain/billing/ledger.js';
import { BanList } from '../../src/domain/security/bans.js';
import { ApiRules } from '../../src/api/auth/rules.js';
import { freshPgDatabase } from '../helpers/pg.js';

async function exercise(storage: Storage, dir: string): Promise<void> {
  const box = SecretBox.fromDataDir(dir);
  const users = new UserService(storage.db, box);
  const ledger = new Ledger(storage.db);
  const a = await users.create({
    username: 'alice',
    password: 'pw1',
    type: UserType.reseller,
    pin: '123456',
    did: '3611111',
  });
  const b = await users.create({ username: 'bob', password: 'pw2', parentid: a.id });
  await assert.rejects(users.create({ username: 'alice', password: 'x' }), UserInputError);
  await assert.rejects(users.create({ username: 'carol', password: 'x', pin: '123456' }), UserInputError);
  // the password is encrypted at rest, readable through the service
  const row = await storage.db
    .selectFrom('tb_users')
    .select('password_enc')
    .where('id', '=', a.id)
    .executeTakeFirstOrThrow();
  assert.ok(!row.password_enc.includes('pw1'));
  assert.equal((await users.forAuth('alice'))!.password, 'pw1');
  assert.equal((await users.forAuth('123456'))!.username, 'alice');
  assert.equal((await users.forAuth('3611111'))!.username, 'alice');
  assert.equal((await users.forAuth(String(b.id)))!.username, 'bob');
  assert.equal(await users.forAuth('nobody'), null);
  assert.equal(await users.isInSubtree(a.id, b.id), true);
  assert.equal(await users.isInSubtree(b.id, a.id), false);

  // ledger: balance equals the sum of entries; no negative balance
  assert.equal(await ledger.post({ userId: b.id, amount: 5_000_000, reason: 'test' }), 5_000_000);
  assert.equal(await ledger.post({ userId: b.id, amount: -1_500_000, reason: 'test' }), 3_500_000);
  await assert.rejects(ledger.post({ userId: b.id, amount: -3_500_001, reason: 'test' }), InsufficientCredit);
  await Promise.all(
    Array.from({ length: 20 }, () =>
      ledger.post({ userId: b.id, amount: -200_000, reason: 'race' }).catch(() => undefined),
    ),
  );
  const bal = (await ledger.balance(b.id))!.credit;
  assert.ok(bal >= 0);
  const sum = await storage.db
    .selectFrom('tb_ledger')
    .select((eb) => eb.fn.sum<number>('amount').as('s'))
    .where('userid', '=', b.id)
    .executeTakeFirstOrThrow();
  assert.equal(Number(sum.s), bal);
  assert.equal(bal, 3_500_000 - 17 * 200_000);

  // bans persist
  const bans = new BanList(storage.db, { threshold: 2, windowMs: 60_000, banMs: 60_000 });
  assert.equal(await bans.recordFailure('203.0.113.1', 'x'), false);
  assert.equal(await bans.recordFailure('::ffff:203.0.113.1', 'x'), true);
  const again = new BanList(storage.db, { threshold: 2, windowMs: 60_000, banMs: 60_000 });
  await again.load();
  assert.equal(again.isBanned('203.0.113.1'), true);
  assert.equal(await again.remove('all'), 1);

  // tb_api rules
  await storage.db
    .insertInto('tb_api')
    .values({ fname: 'myapi', req_key: 0, req_ip: null, req_user: 14, req_user_mode: 4, customsql: 'SELECT 1' })
    .execute();
  const rules = new ApiRules(storage.db);
  assert.equal(await rules.load(), 1);
  assert.deepEqual(rules.resolve('myapi', undefined, 2), {
    reqKey: 0,
    reqIp: 0,
    reqUser: 14,
    userMode: 4,
    customsql: 'SELECT 1',
  });
  assert.equal(rules.resolve('nothing', undefined, 2), undefined);
}

test('storage on SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-sqlite-'));
  const s = await openStorage('', dir);
  try {
    assert.equal(s.dialect, 'sqlite');
    await exercise(s, dir);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('storage on PostgreSQL', async (t) => {
  const pgdb = await freshPgDatabase();
  if ('skip' in pgdb) {
    t.skip(pgdb.skip);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vx-pg-'));
  const s = await openStorage(pgdb.url, dir);
  try {
    assert.equal(s.dialect, 'pg');
    await exercise(s, dir);
    // migrations are idempotent
    await s.close();
    const again = await openStorage(pgdb.url, dir);
    await again.close();
  } finally {
    await s.close().catch(() => undefined);
    await pgdb.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad dburl is a clear error', async () => {
  await assert.rejects(openStorage('mysql://x', '/tmp'), /option "dburl"/);
});
