/**
 * Incoming (mobile-originated) SMS billed as SMS, against the loopback SMSC: the receiver is charged the connectfee
 * of their plan for the sender's prefix, per part, once; the SMSC's redelivery of the same message (single or
 * concatenated) is not charged nor stored twice; a delivery that failed (ESME_RSYSERR answered) is delivered on
 * the redelivery without a second charge; a receiver without credit gets it free (smsmonocredit=deliver) or the
 * SMSC gets ESME_RX_P_APPN (reject) with nothing charged or stored; smsmocharge=false makes them free.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { TestSmsc } from '../helpers/smsc.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

let t: TestServer;
let smsc: TestSmsc;
const LOCAL = src('127.0.0.1');
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
const DAVE = '15556660000';
const ZED = '15556660001';

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const db = () => t.srv.services.storage.db;
const userId = async (name: string) => (await t.srv.services.users.byUsername(name))!.id;
const moLedger = async (name: string) =>
  db()
    .selectFrom('tb_ledger')
    .select(['amount', 'reason', 'ref'])
    .where('userid', '=', await userId(name))
    .where('reason', 'in', ['smsmo', 'smsmorefund'])
    .orderBy('id')
    .execute();
const ims = async (to: string, from: string) =>
  db().selectFrom('tb_imessages').select('body').where('touser', '=', to).where('fromuser', '=', from).execute();
const moRows = async (from: string) =>
  db().selectFrom('tb_smsmo').select(['state', 'cost', 'parts', 'note']).where('sender', '=', from).execute();

before(async () => {
  smsc = await TestSmsc.start();
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  for (const p of [
    { u_username: 'dave', u_password: 'davepw', u_credit: '1.00', u_did: DAVE },
    { u_username: 'zed', u_password: 'zedpw', u_credit: '0.00', u_did: ZED },
  ])
    assert.equal((await h('newuseri', { ...admin, u_currency: 'USD', ...p })).ok, true);
  const csv =
    'prefix,destination,price,connectfee,minduration,increment,currency\n' +
    '1,USA,0.01,0.05,60,60,USD\n44,UK,0.02,0.07,60,60,USD\n';
  assert.deepEqual((await importTariffsCsv(db(), csv)).errors, []);
  await t.srv.services.rating.load();
  const gw = { name: 'main', host: '127.0.0.1', port: String(smsc.port), system_id: 'vox', password: 'secret' };
  assert.equal((await h('addsmsgateway', { ...admin, ...gw, default_sender: 'Vox' })).ok, true);
  await until('bound', async () => (await h('smsgateways', admin)).rows?.[0]?.state === 'bound');
});
after(async () => {
  await t?.stop();
  await smsc?.close();
});

test('an incoming SMS is charged to its receiver once (their plan, the sender prefix); a redelivery is not', async () => {
  assert.deepEqual(await smsc.mo('447700900001', DAVE, 'hello dave'), [0]);
  await until('stored', async () => (await ims('dave', '447700900001')).length === 1);
  // the UK row of dave's plan: 0.07 a part
  const [charge] = await moLedger('dave');
  const row = await db().selectFrom('tb_smsmo').select('id').where('sender', '=', '447700900001').executeTakeFirst();
  assert.deepEqual(charge, { amount: -70_000, reason: 'smsmo', ref: `smsmo:${row?.id}` });
  // the SMSC sends the same message again (our answer lost): answered OK, not charged, not delivered again
  assert.deepEqual(await smsc.mo('447700900001', DAVE, 'hello dave'), [0]);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await moLedger('dave')).length, 1);
  assert.equal((await ims('dave', '447700900001')).length, 1);
  assert.deepEqual(await moRows('447700900001'), [{ state: 'delivered', cost: 70_000, parts: 1, note: '' }]);
  assert.equal((await t.srv.services.ledger.balance(await userId('dave')))!.credit, 930_000);
  assert.deepEqual(await t.srv.services.ledger.audit(), []);
});

test('a concatenated incoming SMS is charged per part once, its redelivered parts not again', async () => {
  const long = 'An incoming message long enough to come in three parts from a US number. '.repeat(3);
  assert.deepEqual(await smsc.mo('15550100200', DAVE, long, 3, 77), [0, 0, 0]);
  await until('stored', async () => (await ims('dave', '15550100200')).length === 1);
  assert.equal((await ims('dave', '15550100200'))[0]!.body, long);
  assert.deepEqual(await smsc.mo('15550100200', DAVE, long, 3, 77), [0, 0, 0]);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    (await moLedger('dave')).map((c) => c.amount),
    [-70_000, -150_000],
  );
  assert.deepEqual(await moRows('15550100200'), [{ state: 'delivered', cost: 150_000, parts: 3, note: '' }]);
  assert.equal((await ims('dave', '15550100200')).length, 1);
});

test('a delivery that fails answers ESME_RSYSERR; the redelivery is delivered, charged only the first time', async () => {
  const sip = t.srv.services.sip!;
  const deliverIm = sip.deliverIm.bind(sip);
  sip.deliverIm = async () => {
    throw new Error('the IM store is down');
  };
  try {
    assert.deepEqual(await smsc.mo('15550100300', DAVE, 'try twice'), [0x08]);
  } finally {
    sip.deliverIm = deliverIm;
  }
  assert.deepEqual(await moRows('15550100300'), [{ state: 'accepted', cost: 50_000, parts: 1, note: '' }]);
  assert.deepEqual(await smsc.mo('15550100300', DAVE, 'try twice'), [0]);
  await until('stored', async () => (await ims('dave', '15550100300')).length === 1);
  assert.deepEqual(await moRows('15550100300'), [{ state: 'delivered', cost: 50_000, parts: 1, note: '' }]);
  const refs = (await moLedger('dave')).map((e) => e.amount);
  assert.deepEqual(refs, [-70_000, -150_000, -50_000]);
});

test('no credit: delivered free by default (logged in the row), or rejected with ESME_RX_P_APPN by smsmonocredit', async () => {
  assert.deepEqual(await smsc.mo('15550100400', ZED, 'free for zed'), [0]);
  await until('stored', async () => (await ims('zed', '15550100400')).length === 1);
  const [row] = await moRows('15550100400');
  assert.equal(row!.state, 'delivered');
  assert.equal(Number(row!.cost), 0);
  assert.match(
    row!.note,
    /^delivered free: insufficient credit: the incoming SMS costs 0\.05 USD \(1 part\(s\)\), 0\.00/,
  );
  t.srv.services.config.persist({ smsmonocredit: 'reject' });
  try {
    assert.deepEqual(await smsc.mo('15550100401', ZED, 'refused for zed'), [0x65]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await ims('zed', '15550100401')).length, 0);
    assert.deepEqual(
      (await moRows('15550100401')).map((r) => [r.state, Number(r.cost)]),
      [['rejected', 0]],
    );
    assert.deepEqual(await moLedger('zed'), []);
    // a rejected message sent again after a recharge is a new attempt: charged and delivered
    assert.equal((await h('addcredit', { ...admin, username: 'zed', credit: '0.05' })).ok, true);
    assert.deepEqual(await smsc.mo('15550100401', ZED, 'refused for zed'), [0]);
    await until('stored', async () => (await ims('zed', '15550100401')).length === 1);
    assert.deepEqual(
      (await moLedger('zed')).map((e) => e.amount),
      [-50_000],
    );
  } finally {
    t.srv.services.config.persist({ smsmonocredit: 'deliver' });
  }
  assert.deepEqual(await t.srv.services.ledger.audit(), []);
});

test('smsmocharge=false: incoming SMS are free', async () => {
  t.srv.services.config.persist({ smsmocharge: 'false' });
  try {
    const before = (await moLedger('dave')).length;
    assert.deepEqual(await smsc.mo('15550100500', DAVE, 'on the house'), [0]);
    await until('stored', async () => (await ims('dave', '15550100500')).length === 1);
    assert.equal((await moLedger('dave')).length, before);
    assert.deepEqual(
      (await moRows('15550100500')).map((r) => [r.state, Number(r.cost)]),
      [['delivered', 0]],
    );
  } finally {
    t.srv.services.config.persist({ smsmocharge: 'true' });
  }
});
