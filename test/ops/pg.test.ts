/**
 * Operations on PostgreSQL: two servers on one database start the same job at the same moment (one runs, the other
 * answers "already running on <node>"); a pg_dump backup restored with pg_restore into an empty database runs a
 * server with every user, ledger entry and CDR.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPgDatabase } from '../helpers/pg.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { Maintenance } from '../../src/ops/maintenance/scheduler.js';
import { restoreBackup } from '../../src/ops/backup/restore.js';
import type { Services } from '../../src/services.js';

const UNIT = 1_000_000;
const LOCAL = src('127.0.0.1');
let a: TestServer | undefined;
let b: TestServer | undefined;
let skip: string | undefined;
const drops: Array<() => Promise<void>> = [];
const work = mkdtempSync(join(tmpdir(), 'vx-opspg-'));

before(async () => {
  const pg = await freshPgDatabase();
  if ('skip' in pg) {
    skip = pg.skip;
    return;
  }
  drops.push(pg.drop);
  a = await startTestServer({ dburl: pg.url, nodeid: 'node-a', usesip: 'false', usemaint: 'false' });
  b = await startTestServer({ dburl: pg.url, nodeid: 'node-b', usesip: 'false', usemaint: 'false' });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  for (const d of drops) await d();
  rmSync(work, { recursive: true, force: true });
});

/** A Maintenance of a server whose steps take a while inside their transactions (so two runs overlap). */
function slow(s: Services, node: string): Maintenance {
  return new Maintenance({
    storage: s.storage,
    ledger: s.ledger,
    dataDir: s.config.dataDir,
    log: s.log,
    node,
    options: () => s.config.options,
    checkpoint: () => new Promise((r) => setTimeout(r, 300)),
  });
}

test('two servers on one PostgreSQL start the same job at once: one runs, the other is told who runs it', async (c) => {
  if (skip) return c.skip(skip);
  const ma = slow(a!.srv.services, 'node-a');
  const mb = slow(b!.srv.services, 'node-b');
  const [ra, rb] = await Promise.allSettled([ma.run('hourlymaint'), mb.run('hourlymaint')]);
  const won = [ra, rb].filter((r) => r.status === 'fulfilled');
  const lost = [ra, rb].filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  assert.match(String(lost[0]!.reason.message), /hourlymaint is already running on node-[ab] \(since /);
  const runs = await a!.srv.services.ops.maintenance.history();
  assert.equal(runs.filter((r) => r.job === 'hourlymaint').length, 1, 'one run recorded');
  // through the API, each server in turn: both run (the lease was given back)
  assert.ok((await a!.srv.gateway.handle(req('hourlymaint', {}, LOCAL))).ok);
  assert.ok((await b!.srv.gateway.handle(req('weeklymaint', {}, LOCAL))).ok);
  const q = await a!.srv.gateway.handle(req('querylist', {}, LOCAL));
  assert.ok(q.ok, q.text);
  assert.match(q.text, /queries running/);
});

test('PostgreSQL backup (pg_dump) restored into an empty database: every user, ledger entry and CDR', async (c) => {
  if (skip) return c.skip(skip);
  const s = a!.srv.services;
  const u = await s.users.create({ username: 'pgalice', password: 'pgalice-Secret-1' });
  await s.ledger.post({ userId: u.id, amount: 12 * UNIT, reason: 'test', ref: 'seed' });
  await s.storage.db
    .insertInto('tb_cdrs')
    .values({
      callid: 'pg-bk-1',
      caller: 'pgalice',
      callee: '4930',
      userid: u.id,
      route: '',
      start_at: 1,
      connect_at: 2,
      end_at: 3000,
      duration: 3,
      billed: 3,
      cost: 0,
      currency: 'USD',
      reason: 'normal',
      leg: '',
      created_at: 3000,
    })
    .execute();
  const r = await a!.srv.gateway.handle(req('backup', {}, LOCAL));
  assert.ok(r.ok, r.text);
  const target = await freshPgDatabase();
  if ('skip' in target) return c.skip(target.skip);
  drops.push(target.drop);
  const dir = join(work, 'restored');
  const res = await restoreBackup({ file: String(r.fields!.file), dataDir: dir, dburl: target.url });
  assert.ok(res.restored.includes('server.key'));
  await assert.rejects(
    restoreBackup({ file: String(r.fields!.file), dataDir: join(work, 'again'), dburl: target.url }),
    /already has voxswitch tables/,
  );
  const t2 = await startTestServer({ dburl: target.url, usesip: 'false', usemaint: 'false' }, dir);
  try {
    const db1 = s.storage.db;
    const db2 = t2.srv.services.storage.db;
    for (const table of ['tb_users', 'tb_ledger', 'tb_cdrs'] as const) {
      const x = await db1.selectFrom(table).selectAll().orderBy('id').execute();
      const y = await db2.selectFrom(table).selectAll().orderBy('id').execute();
      assert.deepEqual(y, x, table);
    }
    const login = await t2.srv.services.users.byUsername('pgalice');
    assert.equal((await t2.srv.services.ledger.balance(login!.id))!.credit, 12 * UNIT);
  } finally {
    await t2.stop();
  }
});
