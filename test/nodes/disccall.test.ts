/**
 * Live calls across nodes (one PostgreSQL, one Redis): a call held by node A (sipp UAC → A → sipp UAS) is listed by
 * quickstat on node B with its node, and disccall on B ends it through A (both sipp parties get the BYE, one CDR with
 * the disccall reason); an unknown id is still an ERROR; a call of a node that does not answer on the bus is an
 * ERROR naming that node after the bounded wait. Redis, PostgreSQL or sipp missing: skipped with the reason, a
 * failure under CI=true.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPgDatabase } from '../helpers/pg.js';
import { needTool } from '../helpers/tools.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../state/redis.js';
import { uac, uacCsv, uas, type CallEnv } from '../calls/helpers.js';
import { startNode, type Node } from './helpers.js';

const missing = await redisMissing();
const pgdb = missing ? undefined : await freshPgDatabase();
const skip = missing ?? (pgdb && 'skip' in pgdb ? pgdb.skip : needTool('sipp'));

describe('live calls of another node: quickstat lists them, disccall ends them', { skip, timeout: 60_000 }, () => {
  const prefix = testPrefix();
  let a: Node;
  let b: Node;
  let work: string;
  let bob = 0;

  before(async () => {
    const db = pgdb as { url: string };
    const common = { dburl: db.url, redisurl: REDIS_URL, usesip: 'true' };
    a = await startNode({ overrides: { ...common, nodeid: 'node-a' }, prefix });
    b = await startNode({ overrides: { ...common, nodeid: 'node-b' }, prefix, keyFrom: a.dataDir });
    const s = a.srv.services;
    bob = (await s.users.create({ username: 'bob', password: 'bobpw', currency: 'USD' })).id;
    await s.ledger.post({ userId: bob, amount: 10_000_000, reason: 'test' });
    await s.users.create({ username: 'carol', password: 'carolpw', currency: 'USD' });
    work = mkdtempSync(join(tmpdir(), 'voxswitch-disc-'));
  });

  after(async () => {
    await a?.close();
    await b?.close();
    if (work) rmSync(work, { recursive: true, force: true });
    if (pgdb && 'drop' in pgdb) await pgdb.drop();
    await dropPrefix(prefix);
  });

  test('a call through node A: listed by quickstat on B (node node-a), ended by disccall on B', async () => {
    const callee = await uas(work, 'uas_answer.xml');
    const sipA = a.srv.services.sip!;
    const reg = sipA.location.update('carol', `reg-carol-${callee.port}`, 1, [
      {
        contact: `sip:carol@127.0.0.1:${callee.port}`,
        expires: 300,
        transport: 'udp',
        srcIp: '127.0.0.1',
        srcPort: callee.port,
        userAgent: 'sipp',
        q: 1,
      },
    ]);
    assert.ok(reg.ok);
    const env = { udpPort: a.sipPort } as CallEnv;
    const caller = uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'disc.csv', [['bob', 'bobpw', 'carol']]));
    const liveA = a.srv.services.liveCalls;
    await until(() => liveA.list().some((c) => c.state === 'connected'), 10_000, 'the call connected on node A');
    assert.equal(b.srv.services.liveCalls.list().length, 0, 'node B holds no call itself');

    const q = await b.api('quickstat');
    assert.equal(q.ok, true, q.text);
    assert.ok(q.columns?.includes('node'), `columns: ${q.columns}`);
    assert.equal(q.rows?.length, 1, JSON.stringify(q.rows));
    const row = q.rows![0]!;
    assert.equal(row.node, 'node-a');
    assert.equal(row.caller, 'bob');
    assert.equal(row.state, 'connected');
    const id = String(row.callid);
    assert.equal(id, liveA.list()[0]!.key);
    // the owner lists it once (its own, from memory)
    const qa = await a.api('quickstat');
    assert.deepEqual(
      qa.rows?.map((r) => [r.callid, r.node]),
      [[id, 'node-a']],
    );

    const unknown = await b.api('disccall', { dbcallid: 'nope' });
    assert.equal(unknown.ok, false);
    assert.match(unknown.text, /no live call with id nope/);

    const d = await b.api('disccall', { dbcallid: id });
    assert.equal(d.ok, true, d.text);
    assert.equal(d.text, `call ${id} disconnected`);
    assert.equal(d.fields?.node, 'node-a');
    const [ra, rb] = await Promise.all([caller, callee.done]);
    assert.equal(ra.code, 0, 'caller got the BYE: ' + ra.out.slice(-1500));
    assert.equal(rb.code, 0, 'callee got the BYE: ' + rb.out.slice(-1500));
    const db = b.srv.services.storage.db;
    await until(
      async () => (await db.selectFrom('tb_cdrs').select('callid').where('userid', '=', bob).execute()).length > 0,
      5000,
      'the CDR of the call',
    );
    const cdrs = await db.selectFrom('tb_cdrs').selectAll().where('userid', '=', bob).execute();
    assert.equal(cdrs.length, 1);
    assert.equal(cdrs[0]!.reason, 'disconnected by API (disccall)');
    assert.equal((await db.selectFrom('tb_livecalls').select('callid').execute()).length, 0);
    const after = await b.api('quickstat');
    assert.equal(after.rows?.length, 0);
  });

  test('a call of a node that does not answer: ERROR naming the node after the bounded wait', async () => {
    const db = b.srv.services.storage.db;
    const now = Date.now();
    await db
      .insertInto('tb_livecalls')
      .values({
        callid: 'ghost-call',
        userid: bob,
        caller: 'bob',
        callee: 'carol',
        route: '',
        leg: '',
        state: 'connected',
        start_at: now,
        connect_at: now,
        maxduration: 60,
        reserved: 0,
        rate_json: '{}',
        updated_at: now,
        node: 'node-gone',
      })
      .execute();
    try {
      const listed = await b.api('quickstat');
      assert.ok(listed.rows?.some((r) => r.callid === 'ghost-call' && r.node === 'node-gone'));
      const t0 = Date.now();
      const d = await b.api('disccall', { dbcallid: 'ghost-call' });
      const took = Date.now() - t0;
      assert.equal(d.ok, false);
      assert.match(d.text, /call ghost-call is held by node node-gone, which did not confirm/);
      assert.ok(took >= 2500 && took < 6000, `waited ${took} ms`);
    } finally {
      await db.deleteFrom('tb_livecalls').where('callid', '=', 'ghost-call').execute();
    }
  });
});
