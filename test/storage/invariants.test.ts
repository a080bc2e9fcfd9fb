/** The money invariants hold in the database itself (triggers), on SQLite and PostgreSQL; reconciliation reports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { Ledger } from '../../src/domain/billing/ledger.js';
import { reconcile } from '../../src/domain/billing/reconcile.js';
import { freshPgDatabase } from '../helpers/pg.js';

async function user(s: Storage, username: string): Promise<number> {
  const r = await s.db
    .insertInto('tb_users')
    .values({ username, password_enc: 'x', type: 4, created_at: 0 } as never)
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(r.id);
}

async function refused(p: Promise<unknown>, re: RegExp, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => re.test(String((e as Error).message)), what);
}

async function invariants(s: Storage): Promise<void> {
  const ledger = new Ledger(s.db);
  const a = await user(s, 'alice');
  const b = await user(s, 'bob');
  await ledger.post({ userId: a, amount: 10_000_000, reason: 'topup' });
  await ledger.transaction((trx) =>
    ledger.transferIn(trx, { from: a, to: b, amount: 3_000_000, reason: 't', ref: 'r' }),
  );
  assert.equal((await ledger.balance(a))!.credit, 7_000_000);
  assert.equal((await ledger.balance(b))!.credit, 3_000_000);

  await refused(s.db.updateTable('tb_ledger').set({ amount: 1 }).execute(), /append-only/, 'ledger UPDATE');
  await refused(s.db.deleteFrom('tb_ledger').execute(), /append-only/, 'ledger DELETE');
  await refused(
    s.db.updateTable('tb_users').set({ credit: 99 }).where('id', '=', a).execute(),
    /ledger entry/,
    'credit',
  );
  await refused(sql`UPDATE tb_users SET credit = credit + 1`.execute(s.db), /ledger entry/, 'credit for everyone');
  await refused(
    s.db
      .insertInto('tb_ledger')
      .values({
        userid: a,
        amount: 5,
        balance_after: 999,
        currency: 'USD',
        reason: 'x',
        ref: '',
        actor: 0,
        created_at: 0,
      })
      .execute(),
    /does not continue/,
    'an entry that does not continue the balance',
  );
  await refused(
    s.db
      .insertInto('tb_users')
      .values({ username: 'rich', password_enc: 'x', type: 4, created_at: 0, credit: 5 } as never)
      .execute(),
    /credit 0/,
    'an account born with credit',
  );
  await refused(s.db.deleteFrom('tb_users').where('id', '=', a).execute(), /cannot be deleted/, 'delete with credit');
  const c = await user(s, 'carol');
  await s.db
    .insertInto('tb_livecalls')
    .values({ callid: 'c1', userid: c, state: 'setup', start_at: 0, updated_at: 0 } as never)
    .execute();
  await refused(
    s.db.deleteFrom('tb_users').where('id', '=', c).execute(),
    /cannot be deleted/,
    'delete with a live call',
  );
  await s.db.deleteFrom('tb_livecalls').execute();
  await s.db.deleteFrom('tb_users').where('id', '=', c).execute(); // no credit, no call: fine
  // a debit below zero is still refused by the ledger, atomically
  await assert.rejects(ledger.post({ userId: b, amount: -4_000_000, reason: 'too much' }));
  assert.equal((await ledger.balance(b))!.credit, 3_000_000);

  const logs: Array<{ level: string; obj: object }> = [];
  const log = {
    info: (obj: object) => logs.push({ level: 'info', obj }),
    error: (obj: object) => logs.push({ level: 'error', obj }),
  };
  assert.deepEqual(await reconcile(ledger, log), []);
  assert.equal(logs.filter((l) => l.level === 'error').length, 0);
  // an outside change that bypasses the triggers (they are dropped here on purpose) is reported loudly
  await sql.raw('DROP TRIGGER tr_users_credit' + (s.dialect === 'pg' ? ' ON tb_users' : '')).execute(s.db);
  await s.db.updateTable('tb_users').set({ credit: 1 }).where('id', '=', b).execute();
  const m = await reconcile(ledger, log);
  assert.deepEqual(m, [{ userId: b, credit: 1, ledgerSum: 3_000_000 }]);
  assert.deepEqual(
    logs.filter((l) => l.level === 'error').map((l) => l.obj),
    [{ userId: b, credit: 1, ledgerSum: 3_000_000, difference: 1 - 3_000_000 }],
  );
}

test('money invariants on SQLite; the database file is 0600', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-inv-'));
  const s = await openStorage('', dir);
  try {
    assert.equal(statSync(join(dir, 'voxswitch.db')).mode & 0o777, 0o600);
    await invariants(s);
    for (const f of ['voxswitch.db-wal', 'voxswitch.db-shm']) assert.equal(statSync(join(dir, f)).mode & 0o077, 0, f);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('money invariants on PostgreSQL', async (t) => {
  const pgdb = await freshPgDatabase();
  if ('skip' in pgdb) return t.skip(pgdb.skip);
  const s = await openStorage(pgdb.url, tmpdir());
  try {
    await invariants(s);
  } finally {
    await s.close();
    await pgdb.drop();
  }
});
