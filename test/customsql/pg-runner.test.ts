import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { CustomSqlError, CustomSqlRunner, type CustomSqlResult } from '../../src/api/customsql/runner.js';
import { PG_BASE, pgClient } from '../helpers/pg.js';

const PG_URL = process.env.VOXSWITCH_TEST_PG_URL ?? PG_BASE;
const TABLE = `csql_test_${process.pid}_${Date.now().toString(36)}`;
const ctx = { userId: 1, username: 'alice', sparams: {} as Record<string, string> };

function asResult(r: CustomSqlResult | { queued: true }): CustomSqlResult {
  assert.ok(!('queued' in r), 'expected a result, got {queued:true}');
  return r as CustomSqlResult;
}

describe('CustomSqlRunner (pg)', { timeout: 60_000 }, () => {
  let admin: pg.Client | undefined;
  let runner: CustomSqlRunner | undefined;
  let skipReason: string | undefined;

  before(async () => {
    const c = await pgClient(PG_URL);
    if ('skip' in c) {
      skipReason = c.skip;
      return;
    }
    admin = c.client;
    await admin.query(
      `CREATE TABLE ${TABLE} (id integer PRIMARY KEY, username text NOT NULL, name text, credit numeric NOT NULL DEFAULT 0)`,
    );
    await admin.query(
      `INSERT INTO ${TABLE} (id, username, name, credit) SELECT g, 'user' || g, NULL, 0 FROM generate_series(2, 150) g`,
    );
    await admin.query(`INSERT INTO ${TABLE} (id, username, name, credit) VALUES (1, 'alice', 'Alice', 10)`);
    runner = new CustomSqlRunner({ dialect: 'pg', location: PG_URL });
  });

  after(async () => {
    await runner?.close();
    if (admin) {
      await admin.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => {});
      await admin.end().catch(() => {});
    }
  });

  function need(t: { skip(msg?: string): void }): CustomSqlRunner | undefined {
    if (!runner) {
      t.skip(skipReason ?? 'PostgreSQL not available');
      return undefined;
    }
    return runner;
  }

  it('runs a SELECT with bound placeholders', async (t) => {
    const r = need(t);
    if (!r) return;
    const res = asResult(
      await r.run(`SELECT username, name, '[USERID]' AS lit FROM ${TABLE} WHERE id = [USERID]`, ctx, 2000),
    );
    assert.deepEqual(res.columns, ['username', 'name', 'lit']);
    assert.deepEqual(res.rows, [{ username: 'alice', name: 'Alice', lit: '[USERID]' }]);
    assert.equal(res.truncated, false);
    // a trailing line comment must not swallow the LIMIT wrapper
    const commented = asResult(await r.run('SELECT [USERNAME] AS who -- trailing [USERID] comment', ctx, 2000));
    assert.deepEqual(commented.rows, [{ who: 'alice' }]);
  });

  it('answers at most 100 rows and flags truncation', async (t) => {
    const r = need(t);
    if (!r) return;
    const res = asResult(await r.run(`SELECT id FROM ${TABLE} ORDER BY id`, ctx, 5000));
    assert.equal(res.rows.length, 100);
    assert.equal(res.truncated, true);
    const exact = asResult(await r.run(`SELECT id FROM ${TABLE} WHERE id <= 100`, ctx, 5000));
    assert.equal(exact.rows.length, 100);
    assert.equal(exact.truncated, false);
  });

  it('injection attempts via sparams are plain data', async (t) => {
    const r = need(t);
    if (!r) return;
    const none = asResult(
      await r.run(
        `SELECT id FROM ${TABLE} WHERE username = [SPARAM1]`,
        { ...ctx, sparams: { sparam1: "x' OR '1'='1" } },
        2000,
      ),
    );
    assert.deepEqual(none.rows, []);
    const evil = `'; DROP TABLE ${TABLE}; --`;
    const upd = asResult(
      await r.run(
        `*UPDATE ${TABLE} SET name = [SPARAM1] WHERE id = [USERID]`,
        { ...ctx, sparams: { sparam1: evil } },
        2000,
      ),
    );
    assert.equal(upd.changes, 1);
    const check = await admin!.query(`SELECT name FROM ${TABLE} WHERE id = 1`);
    assert.equal(check.rows[0].name, evil);
  });

  it('queues non-* DML; * DML failures reject with the database message', async (t) => {
    const r = need(t);
    if (!r) return;
    const q = await r.run(`UPDATE ${TABLE} SET credit = credit + 1 WHERE id = [USERID]`, ctx, 2000);
    assert.deepEqual(q, { queued: true });
    const after = asResult(await r.run(`SELECT credit::int AS credit FROM ${TABLE} WHERE id = [USERID]`, ctx, 2000));
    assert.deepEqual(after.rows, [{ credit: 11 }]);
    await assert.rejects(
      r.run(`*INSERT INTO ${TABLE} (id, username) VALUES ([USERID], [USERNAME])`, ctx, 2000),
      (e: unknown) => e instanceof CustomSqlError && /duplicate key/.test(e.message),
    );
  });

  it('really stops a runaway query at the time limit, then works again', async (t) => {
    const r = need(t);
    if (!r) return;
    const started = Date.now();
    await assert.rejects(
      r.run(`SELECT count(*) FROM ${TABLE} a, ${TABLE} b, ${TABLE} c, ${TABLE} d, ${TABLE} e`, ctx, 300),
      (e: unknown) => e instanceof CustomSqlError && e.message === 'custom SQL query exceeded the time limit of 300 ms',
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    await assert.rejects(r.run('SELECT pg_sleep(10)', ctx, 300), /time limit of 300 ms/);
    const again = asResult(await r.run(`SELECT count(*)::int AS n FROM ${TABLE}`, ctx, 5000));
    assert.deepEqual(again.rows, [{ n: 150 }]);
  });
});
