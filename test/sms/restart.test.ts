/**
 * Restart with queued messages: messages accepted while no SMSC answers wait in tb_sms; after a restart of
 * voxswitch each is submitted exactly once (counted on the SMSC side). Rows a crash left in `submitting` follow the
 * at-most-once rule: a part marked sent but not acknowledged is never written again, the parts after it are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { TestSmsc } from '../helpers/smsc.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

const LOCAL = src('127.0.0.1');
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
const bob = { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' };
const OPTS = { defaultcountrycode: '1', smsretrydelay: '100', smsmaxattempts: '1000', nodeid: 'restart-node' };

async function until(what: string, f: () => Promise<boolean>, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('queued messages survive a restart and are submitted exactly once; crash leftovers at most once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-sms-restart-'));
  let smsc = await TestSmsc.start();
  const port = smsc.port;
  let t: TestServer | undefined = await startTestServer(OPTS, dir);
  try {
    const h = (e: string, p: Record<string, string>) => t!.srv.gateway.handle(req(e, p, LOCAL));
    assert.equal((await h('newuseri', { u_username: 'bob', u_password: 'bobpw', u_credit: '10' })).ok, true);
    const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.02,60,60,USD\n';
    await importTariffsCsv(t.srv.services.storage.db, csv);
    await t.srv.services.rating.load();
    const add = await h('addsmsgateway', {
      ...admin,
      name: 'smsc',
      host: '127.0.0.1',
      port: String(port),
      system_id: 'vox',
      password: 'secret',
      default_sender: '15550000000',
    });
    assert.equal(add.ok, true, add.text);
    await until('bound', async () => t!.srv.services.sms.link?.status('smsc')?.state === 'bound');
    await smsc.close();
    await until('down', async () => t!.srv.services.sms.link?.status('smsc')?.state !== 'bound');
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await h('sms', { ...bob, bnum: `1555100000${i}`, txt: `queued ${i}` });
      assert.equal(r.ok, true, r.text);
      ids.push(Number(r.fields?.id));
    }
    // what a crash leaves: rows in submitting, one part marked sent and not acknowledged (x), none marked (y), and a
    // 3-part message with part 1 acknowledged and part 2 marked (z)
    const db = t.srv.services.storage.db;
    const now = Date.now();
    const bobId = (await t.srv.services.users.byUsername('bob'))!.id;
    const row = (dest: string, text: string, parts: number, sent: number, acked: number, owner: string) => ({
      userid: bobId,
      sender: '',
      destination: dest,
      text,
      encoding: 'gsm7',
      parts,
      sent,
      acked,
      ref: 9,
      gateway: 'smsc',
      state: 'submitting',
      attempts: 0,
      next_try_at: now,
      owner,
      lease_until: owner ? now + 600_000 : 1,
      error: '',
      cost: 0,
      created_at: now,
      updated_at: now,
    });
    const ins = async (r: ReturnType<typeof row>) =>
      Number((await db.insertInto('tb_sms').values(r).returning('id').executeTakeFirstOrThrow()).id);
    const x = await ins(row('15552000001', 'crash x', 1, 1, 0, 'restart-node'));
    const y = await ins(row('15552000002', 'crash y', 1, 0, 0, ''));
    const long = 'z'.repeat(153 * 2 + 10);
    const z = await ins(row('15552000003', long, 3, 2, 1, 'restart-node'));
    await db
      .insertInto('tb_smsparts')
      .values({ smsid: z, part: 0, gateway: 'smsc', message_id: 'old1', state: 'submitted', updated_at: now })
      .execute();
    await t.stop();
    t = undefined;

    smsc = await TestSmsc.start({ port });
    t = await startTestServer(OPTS, dir);
    const q = t.srv.services.sms.queue;
    await until('all submitted', async () => {
      for (const id of [...ids, x, y, z]) if ((await q.byId(id))?.state !== 'submitted') return false;
      return true;
    });
    await new Promise((r) => setTimeout(r, 300)); // anything sent twice would arrive now
    for (let i = 0; i < 5; i++)
      assert.equal(smsc.submits.filter((s) => s.destination === `1555100000${i}`).length, 1, `message ${i}`);
    assert.equal(smsc.submits.filter((s) => s.destination === '15552000001').length, 0);
    assert.match((await q.byId(x))!.error, /part\(s\) 1-1 unconfirmed after a stop: not sent again/);
    assert.equal(smsc.submits.filter((s) => s.destination === '15552000002').length, 1);
    const zs = smsc.submits.filter((s) => s.destination === '15552000003');
    assert.equal(zs.length, 1);
    assert.deepEqual([...zs[0]!.udh!], [5, 0, 3, 9, 3, 3]);
    assert.deepEqual(
      (await q.parts(z)).map((p) => p.state),
      ['submitted', 'unconfirmed', 'submitted'],
    );
    // the five were charged once each when accepted, never again
    const charged = await t.srv.services.storage.db
      .selectFrom('tb_ledger')
      .select('ref')
      .where('userid', '=', bobId)
      .where('reason', '=', 'sms')
      .execute();
    assert.deepEqual(charged.map((c) => c.ref).sort(), ids.map((i) => `sms:${i}`).sort());
  } finally {
    await t?.stop();
    await smsc.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
