/**
 * kill -9 of one of two `voxswitch serve` nodes (one PostgreSQL, one Redis) while several rated calls are up on it:
 * the other node keeps serving; it bills the dead node's calls once (tb_livecalls / tb_reservations past their
 * expiry); the dead node drops out of the shared node list after its expiry; restarted, the killed node bills nothing
 * again. Audit at the end: every balance equals its ledger, one CDR per call, no charge twice, nothing left reserved.
 * Missing PostgreSQL, Redis or bin/voxswitch.js peers: skipped with the reason, a failure under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';
import { openState } from '../../src/state/index.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../state/redis.js';
import { LOCAL, Phone, statusOf } from './helpers.js';
import { req } from '../helpers/source.js';
import { audit } from './audit.js';
import { serve, type Served } from './serve.js';

const missing = await redisMissing();
const pgdb = missing ? undefined : await freshPgDatabase();
const skip = missing ?? (pgdb && 'skip' in pgdb ? pgdb.skip : false);
const UNIT = 1_000_000;
const CALLS_ON_A = 6;

/** Accounts k0..k{n-1} (password pw-kN, 100 USD), 1555… at 0.60/min through a gateway at `gwPort`. */
async function provision(dataDir: string, dburl: string, n: number, gwPort: number): Promise<void> {
  const srv = await startServer({
    dataDir,
    overrides: { dburl, usesip: 'false', usemainaport: 'false' },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  try {
    const s = srv.services;
    for (let i = 0; i < n; i++) {
      const u = await s.users.create({ username: `k${i}`, password: `pw-k${i}`, currency: 'USD' });
      await s.ledger.post({ userId: u.id, amount: 100 * UNIT, reason: 'test' });
    }
    const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1555,Test,0.60,0,1,1,USD\n';
    assert.deepEqual((await importTariffsCsv(s.storage.db, csv)).errors, []);
    const gwArgs = { name: 'gw', host: '127.0.0.1', port: String(gwPort), transport: 'udp', prefix: '1555' };
    const r = await srv.gateway.handle(req('addgateway', gwArgs, LOCAL));
    assert.ok(r.ok, r.text);
  } finally {
    await srv.stop();
  }
}

test(
  'kill -9 of a node with calls up: the survivor serves and bills them once; the restart bills nothing again',
  {
    skip,
    timeout: 150_000,
  },
  async () => {
    const db = pgdb as { url: string; drop: () => Promise<void> };
    const prefix = testPrefix();
    const dirA = mkdtempSync(join(tmpdir(), 'voxswitch-killa-'));
    const dirB = mkdtempSync(join(tmpdir(), 'voxswitch-killb-'));
    const gw = await new Phone('gw', '').open();
    gw.answerCalls = true;
    const phones: Phone[] = [];
    let a: Served | undefined;
    let b: Served | undefined;
    const state = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'observer' });
    try {
      await provision(dirA, db.url, CALLS_ON_A + 2, gw.port);
      copyFileSync(join(dirA, 'server.key'), join(dirB, 'server.key'));
      const sets = { dburl: db.url, redisurl: REDIS_URL, authfailban: '0', defaultcountrycode: '1' };
      a = await serve(dirA, { ...sets, nodeid: 'node-a' }, prefix);
      b = await serve(dirB, { ...sets, nodeid: 'node-b' }, prefix);
      for (let i = 0; i < CALLS_ON_A + 2; i++) phones.push(await new Phone(`k${i}`, `pw-k${i}`).open());

      // several calls up on A, one on B
      const onA = await Promise.all(phones.slice(0, CALLS_ON_A).map((p, i) => p.invite(a!.port, `1555000${i}`)));
      for (const c of onA) assert.equal(c.status, 200, c.res);
      const onB = await phones[CALLS_ON_A]!.invite(b.port, '15551000');
      assert.equal(onB.status, 200, onB.res);
      await until(async () => (await state.nodes.list()).length === 2, 10_000, 'both nodes announced');
      // past one heartbeat of A's live calls (10 s): the rows say how long the calls were up
      await new Promise((r) => setTimeout(r, 11_000));

      await a.kill();
      // B keeps serving: its call ends normally, a new call works
      assert.equal(statusOf(await phones[CALLS_ON_A]!.bye(onB.dialog!)), 200);
      const fresh = await phones[CALLS_ON_A + 1]!.invite(b.port, '15552000');
      assert.equal(fresh.status, 200, fresh.res);
      assert.equal(statusOf(await phones[CALLS_ON_A + 1]!.bye(fresh.dialog!)), 200);

      // A drops out of the node list when its announcement expires (15 s)
      await until(
        async () => (await state.nodes.list()).map((n) => n.id).join() === 'node-b',
        25_000,
        'node-a gone from the node list',
      );
      // B bills A's calls once they are stale (30 s without a refresh, then B's next sweep)
      await until(async () => (await audit(db.url)).liveRowsLeft === 0, 60_000, "the survivor billed A's calls");
      const first = await audit(db.url);
      assert.ok(first.ok, JSON.stringify(first));
      assert.equal(first.cdrs, CALLS_ON_A + 2, 'one CDR per call');

      // the killed node starts again: recovery finds nothing of its own to bill
      a = await serve(dirA, { ...sets, nodeid: 'node-a' }, prefix);
      await new Promise((r) => setTimeout(r, 1000));
      const again = await audit(db.url);
      assert.ok(again.ok, JSON.stringify(again));
      assert.equal(again.cdrs, CALLS_ON_A + 2, 'nothing recorded twice');
      // A's calls were billed up to their last refresh (one fell in the 11 s before the kill): each charged
      const { Client } = (await import('pg')).default;
      const c = new Client({ connectionString: db.url });
      await c.connect();
      const rows = (await c.query(`SELECT duration, cost FROM tb_cdrs WHERE callee LIKE '%1555000%'`)).rows;
      await c.end();
      assert.equal(rows.length, CALLS_ON_A);
      for (const r of rows) assert.ok(Number(r.duration) >= 1 && Number(r.cost) > 0, JSON.stringify(r));
    } finally {
      for (const p of [gw, ...phones]) p.close();
      await a?.stop();
      await b?.stop();
      await state.close();
      for (const d of [dirA, dirB]) rmSync(d, { recursive: true, force: true });
      await dropPrefix(prefix);
      if (pgdb && 'drop' in pgdb) await pgdb.drop();
    }
  },
);
