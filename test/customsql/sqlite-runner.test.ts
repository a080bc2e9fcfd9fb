import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CustomSqlError, CustomSqlRunner, type CustomSqlResult } from '../../src/api/customsql/runner.js';

const ctx = { userId: 1, username: 'alice', sparams: {} as Record<string, string> };

function asResult(r: CustomSqlResult | { queued: true }): CustomSqlResult {
  assert.ok(!('queued' in r), 'expected a result, got {queued:true}');
  return r as CustomSqlResult;
}

describe('CustomSqlRunner (sqlite)', { timeout: 60_000 }, () => {
  let dir: string;
  let file: string;
  let runner: CustomSqlRunner;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'voxswitch-csql-'));
    file = join(dir, 'test.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE tb_users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, name TEXT, credit REAL NOT NULL DEFAULT 0);
      CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, userid INTEGER, body TEXT);
      CREATE TABLE t (x INTEGER);
    `);
    db.prepare('INSERT INTO tb_users (id, username, name, credit) VALUES (?, ?, ?, ?)').run(1, 'alice', 'Alice', 12.5);
    db.prepare('INSERT INTO tb_users (id, username, name, credit) VALUES (?, ?, ?, ?)').run(2, 'bob', 'Bob', 3);
    const ins = db.prepare('INSERT INTO t (x) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) ins.run(i);
    })();
    db.close();
    runner = new CustomSqlRunner({ dialect: 'sqlite', location: file });
  });

  after(async () => {
    await runner?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function peek<T>(sql: string, ...params: unknown[]): T {
    const db = new Database(file, { readonly: true, timeout: 5000 });
    try {
      return db.prepare(sql).get(...params) as T;
    } finally {
      db.close();
    }
  }

  it('runs a SELECT with [USERID] bound', async () => {
    const r = asResult(await runner.run('SELECT username, credit FROM tb_users WHERE id = [USERID]', ctx, 2000));
    assert.deepEqual(r.columns, ['username', 'credit']);
    assert.deepEqual(r.rows, [{ username: 'alice', credit: 12.5 }]);
    assert.equal(r.truncated, false);
  });

  it('leaves placeholders inside literals as text', async () => {
    const r = asResult(await runner.run("SELECT '[USERID]' AS lit, [USERNAME] AS who", ctx, 2000));
    assert.deepEqual(r.rows, [{ lit: '[USERID]', who: 'alice' }]);
  });

  it('an injection attempt through a sparam finds nothing', async () => {
    const r = asResult(
      await runner.run(
        'SELECT id FROM tb_users WHERE username = [SPARAM1]',
        { ...ctx, sparams: { sparam1: "x' OR '1'='1" } },
        2000,
      ),
    );
    assert.deepEqual(r.rows, []);
  });

  it("stores a '; DROP TABLE ... sparam verbatim as data", async () => {
    const evil = "'; DROP TABLE tb_users; --";
    const r = asResult(
      await runner.run(
        '*INSERT INTO notes (userid, body) VALUES ([USERID], [SPARAM1])',
        { ...ctx, sparams: { sparam1: evil } },
        2000,
      ),
    );
    assert.equal(r.changes, 1);
    const row = peek<{ body: string }>('SELECT body FROM notes WHERE body = ?', evil);
    assert.equal(row.body, evil);
    assert.equal(peek<{ n: number }>('SELECT count(*) AS n FROM tb_users').n, 2);
  });

  it('answers at most 100 rows and flags truncation', async () => {
    const r = asResult(await runner.run('SELECT x FROM t ORDER BY x', ctx, 5000));
    assert.equal(r.rows.length, 100);
    assert.equal(r.truncated, true);
    assert.deepEqual(r.rows[99], { x: 99 });
    const exact = asResult(await runner.run('SELECT x FROM t WHERE x < 100', ctx, 5000));
    assert.equal(exact.rows.length, 100);
    assert.equal(exact.truncated, false);
  });

  it('honours a custom maxRows', async () => {
    const small = new CustomSqlRunner({ dialect: 'sqlite', location: file, maxRows: 3 });
    try {
      const r = asResult(await small.run('SELECT x FROM t ORDER BY x', ctx, 5000));
      assert.deepEqual(r.rows, [{ x: 0 }, { x: 1 }, { x: 2 }]);
      assert.equal(r.truncated, true);
    } finally {
      await small.close();
    }
  });

  it('runs * DML synchronously and reports changes', async () => {
    const r = asResult(
      await runner.run(
        '*UPDATE tb_users SET name = [SPARAM1] WHERE id = [USERID]',
        { ...ctx, sparams: { sparam1: 'Alice S.' } },
        2000,
      ),
    );
    assert.equal(r.changes, 1);
    assert.deepEqual(r.rows, []);
    assert.equal(peek<{ name: string }>('SELECT name FROM tb_users WHERE id = 1').name, 'Alice S.');
  });

  it('* DML failures reject with the database message', async () => {
    await assert.rejects(
      runner.run('*INSERT INTO no_such_table (a) VALUES ([USERID])', ctx, 2000),
      (e: unknown) => e instanceof CustomSqlError && /no such table/.test(e.message),
    );
    await assert.rejects(
      runner.run('*INSERT INTO tb_users (id, username) VALUES ([USERID], [USERNAME])', ctx, 2000),
      (e: unknown) => e instanceof CustomSqlError && /UNIQUE/.test(e.message),
    );
  });

  it('queues non-* DML and runs it in the background', async () => {
    const before = Date.now();
    const r = await runner.run('UPDATE tb_users SET credit = credit + 1 WHERE id = [USERID]', ctx, 2000);
    assert.deepEqual(r, { queued: true });
    assert.ok(Date.now() - before < 1000);
    // Queries run in order, so a following SELECT sees the update.
    const after = asResult(await runner.run('SELECT credit FROM tb_users WHERE id = [USERID]', ctx, 2000));
    assert.deepEqual(after.rows, [{ credit: 13.5 }]);
  });

  it('validates non-* DML before queueing (errors are not queued)', async () => {
    await assert.rejects(runner.run('UPDATE t SET x = 1; DROP TABLE t', ctx, 2000), CustomSqlError);
    await assert.rejects(runner.run('UPDATE t SET x = [SPARAM4]', ctx, 2000), /sparam4/);
  });

  it('logs background failures without the bound values', async () => {
    const secret = 'top-secret-value-123';
    const errors: string[] = [];
    const spy = mock.method(console, 'error', (...args: unknown[]) => {
      errors.push(args.map(String).join(' '));
    });
    try {
      const r = await runner.run(
        'INSERT INTO no_such_table (a) VALUES ([SPARAM1])',
        { ...ctx, sparams: { sparam1: secret } },
        2000,
      );
      assert.deepEqual(r, { queued: true });
      await runner.run('SELECT 1 AS one', ctx, 2000); // drains the queue
      await new Promise((res) => setImmediate(res));
    } finally {
      spy.mock.restore();
    }
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /no such table/);
    assert.ok(!errors[0]!.includes(secret));
  });

  it('rejects forbidden statements without touching the database', async () => {
    for (const sql of ['DROP TABLE t', 'PRAGMA writable_schema = 1', "ATTACH 'x.db' AS x", 'SELECT 1; SELECT 2']) {
      await assert.rejects(runner.run(sql, ctx, 2000), CustomSqlError, sql);
    }
    assert.equal(peek<{ n: number }>('SELECT count(*) AS n FROM t').n, 2000);
  });

  it('really stops a runaway query at the time limit, then works again', async () => {
    const started = Date.now();
    await assert.rejects(
      runner.run('SELECT count(*) FROM t a, t b, t c, t d', ctx, 300),
      (e: unknown) => e instanceof CustomSqlError && e.message === 'custom SQL query exceeded the time limit of 300 ms',
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    const r = asResult(await runner.run('SELECT count(*) AS n FROM t', ctx, 5000));
    assert.deepEqual(r.rows, [{ n: 2000 }]);
  });

  it('queued work behind a runaway query still runs', async () => {
    const slow = runner.run('SELECT count(*) FROM t a, t b, t c, t d', ctx, 200);
    const fast = runner.run('SELECT [USERID] AS id', ctx, 5000);
    await assert.rejects(slow, /time limit of 200 ms/);
    assert.deepEqual(asResult(await fast).rows, [{ id: 1 }]);
  });

  it('a missing database file rejects cleanly and does not crash the process', async () => {
    const bad = new CustomSqlRunner({ dialect: 'sqlite', location: join(dir, 'does-not-exist.db') });
    try {
      await assert.rejects(
        bad.run('SELECT 1', ctx, 2000),
        (e: unknown) => e instanceof CustomSqlError && /cannot open/.test(e.message),
      );
      await assert.rejects(bad.run('SELECT 1', ctx, 2000), CustomSqlError); // respawned, fails again
    } finally {
      await bad.close();
    }
  });

  it('refuses to run after close()', async () => {
    const r2 = new CustomSqlRunner({ dialect: 'sqlite', location: file });
    assert.deepEqual(asResult(await r2.run('SELECT 2 AS two', ctx, 2000)).rows, [{ two: 2 }]);
    await r2.close();
    await assert.rejects(r2.run('SELECT 1', ctx, 2000), /closed/);
  });
});
