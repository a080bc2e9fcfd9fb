/**
 * SMS on PostgreSQL: concurrent claims never take the same row (FOR UPDATE SKIP LOCKED inside the claiming
 * UPDATE), and the whole path (accept + charge in one transaction, submit, receipt → delivered) on the pg dialect;
 * incoming SMS charged and delivered once when copies race in one process or in several (the advisory lock).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, src } from '../helpers/source.js';
import { usePgTestServer } from '../helpers/pg.js';
import { TestSmsc } from '../helpers/smsc.js';
import { SmsQueue } from '../../src/domain/messaging/sms/queue.js';
import { MoCharges } from '../../src/domain/messaging/sms/mobile.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

const pg = usePgTestServer('sms', { apilimitip: '0', apilimituser: '0', defaultcountrycode: '1', nodeid: 'pgsms' });
const LOCAL = src('127.0.0.1');
const h = (e: string, p: Record<string, string>) => pg.t!.srv.gateway.handle(req(e, p, LOCAL));

test('PostgreSQL: concurrent claimers share the due rows without overlap', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const db = pg.t!.srv.services.storage.db;
  const q = pg.t!.srv.services.sms.queue;
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < 200; i++)
      await q.insertIn(trx, {
        userid: 1,
        sender: 'x',
        destination: `1555${i}`,
        text: 't',
        encoding: 'gsm7',
        parts: 1,
        ref: 0,
        cost: 0,
      });
  });
  const queues = [q, new SmsQueue(db, 'pg'), new SmsQueue(db, 'pg'), new SmsQueue(db, 'pg')];
  const got = await Promise.all(
    queues.map(async (queue, k) => {
      const mine: number[] = [];
      for (;;) {
        const rows = await queue.claim(7, `claimer${k}`, 60_000);
        // a claim that met rows locked by another claimer answers none: done only when none is due any more
        if (
          !rows.length &&
          !(await db.selectFrom('tb_sms').select('id').where('state', '=', 'accepted').executeTakeFirst())
        )
          return mine;
        mine.push(...rows.map((r) => r.id));
      }
    }),
  );
  const all = got.flat();
  assert.equal(all.length, 200);
  assert.equal(new Set(all).size, 200);
  assert.ok(got.filter((g) => g.length > 0).length >= 2, `the claims were concurrent: ${got.map((g) => g.length)}`);
  await db.deleteFrom('tb_sms').execute();
});

test('PostgreSQL: accept and charge, submit, delivery receipt → delivered; credit short refused', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const smsc = await TestSmsc.start({ receiptAfterMs: 5 });
  try {
    assert.equal((await h('newuseri', { u_username: 'pbob', u_password: 'pbobpw', u_credit: '1' })).ok, true);
    const db = pg.t!.srv.services.storage.db;
    const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.03,60,60,USD\n';
    assert.deepEqual((await importTariffsCsv(db, csv)).errors, []);
    await pg.t!.srv.services.rating.load();
    const add = await h('addsmsgateway', {
      name: 'pgsmsc',
      host: '127.0.0.1',
      port: String(smsc.port),
      system_id: 'vox',
      password: 'secret',
      default_sender: 'Vox',
    });
    assert.equal(add.ok, true, add.text);
    const who = { authkey: 'test-api-key-123', authid: 'pbob', authpwd: 'pbobpw' };
    const ids: number[] = [];
    for (let i = 0; i < 33; i++) {
      const r = await h('sms', { ...who, bnum: `1555300${String(i).padStart(4, '0')}`, txt: `pg ${i}` });
      assert.equal(r.ok, true, r.text);
      ids.push(Number(r.fields?.id));
    }
    const short = await h('sms', { ...who, bnum: '15553009999', txt: 'one too many' });
    assert.match(short.text, /^insufficient credit: the message costs 0\.03 USD/);
    const q = pg.t!.srv.services.sms.queue;
    const end = Date.now() + 10_000;
    for (;;) {
      const states = await Promise.all(ids.map(async (id) => (await q.byId(id))?.state));
      if (states.every((s) => s === 'delivered')) break;
      if (Date.now() > end) assert.fail(`not all delivered: ${states.join(',')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(smsc.submits.length, 33);
    const bal = await pg.t!.srv.services.ledger.balance((await pg.t!.srv.services.users.byUsername('pbob'))!.id);
    assert.equal(bal?.credit, 1_000_000 - 33 * 30_000);
  } finally {
    await smsc.close();
  }
});

test('PostgreSQL: an incoming SMS charged to its receiver once, its redelivery not; no credit rejected', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  const s = pg.t!.srv.services;
  const smsc = await TestSmsc.start();
  try {
    const users = [
      { u_username: 'pmo', u_password: 'pmopw', u_credit: '0.10', u_did: '15554440000' },
      { u_username: 'pmo0', u_password: 'pmo0pw', u_credit: '0', u_did: '15554440001' },
    ];
    for (const u of users) assert.equal((await h('newuseri', u)).ok, true);
    const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.03,60,60,USD\n';
    assert.deepEqual((await importTariffsCsv(s.storage.db, csv)).errors, []);
    await s.rating.load();
    const gw = { name: 'pgmo', host: '127.0.0.1', port: String(smsc.port), system_id: 'vox', password: 'secret' };
    assert.equal((await h('addsmsgateway', gw)).ok, true);
    for (
      let i = 0;
      i < 400 && (await h('smsgateways', {})).rows?.find((r) => r.name === 'pgmo')?.state !== 'bound';
      i++
    )
      await new Promise((r) => setTimeout(r, 25));
    // the same message three times at once (a redelivery racing the first): one charge, one delivery
    const copies = await Promise.all([1, 2, 3].map(() => smsc.mo('15550007777', '15554440000', 'pg mo')));
    assert.deepEqual(copies, [[0], [0], [0]]);
    const uid = (await s.users.byUsername('pmo'))!.id;
    const charges = await s.storage.db
      .selectFrom('tb_ledger')
      .select('amount')
      .where('userid', '=', uid)
      .where('reason', '=', 'smsmo')
      .execute();
    assert.deepEqual(
      charges.map((e) => Number(e.amount)),
      [-30_000],
    );
    const ims = await s.storage.db.selectFrom('tb_imessages').select('body').where('touser', '=', 'pmo').execute();
    assert.equal(ims.length, 1);
    // three processes (three MoCharges on the database) get the same message at once: one charge, one delivery
    const mk = () => new MoCharges({ dialect: 'pg', config: s.config, ledger: s.ledger, rating: s.rating, log: s.log });
    let delivered = 0;
    const handler = {
      recipient: (to: string) => s.users.byUsername(to === '15554440000' ? 'pmo' : 'nobody'),
      deliver: async () => {
        delivered++;
        await new Promise((r) => setTimeout(r, 50));
        return true;
      },
    };
    const m = { gateway: 'pgmo', from: '15550008888', to: '15554440000', text: 'three nodes', parts: 1 };
    const outs = await Promise.all([mk(), mk(), mk()].map((x) => x.handle(m, handler)));
    assert.equal(delivered, 1);
    assert.deepEqual(outs.map((o) => o.redelivery).sort(), [false, true, true]);
    const after = await s.storage.db
      .selectFrom('tb_ledger')
      .select('amount')
      .where('userid', '=', uid)
      .where('reason', '=', 'smsmo')
      .execute();
    assert.equal(after.length, 2);
    s.config.persist({ smsmonocredit: 'reject' });
    try {
      assert.deepEqual(await smsc.mo('15550007777', '15554440001', 'pg poor'), [0x65]);
    } finally {
      s.config.persist({ smsmonocredit: 'deliver' });
    }
    assert.deepEqual(await s.ledger.audit(), []);
  } finally {
    await h('delsmsgateway', { name: 'pgmo' });
    await smsc.close();
  }
});
