/**
 * SMS end to end against a real SMPP peer (the `smpp` package's server side, test/helpers/smsc.ts): binds and a
 * refused bind, submit with a delivery receipt, long GSM and UCS-2 messages, throttling retried, a permanent
 * refusal refunded, the window respected, rebind after the SMSC drops, billing charged once, and the refusals
 * (no gateway, non-GSM characters, too many parts, credit short) with nothing charged or queued.
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
const REMOTE = src('203.0.113.7');
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const admin = as('admin', ADMIN_PASSWORD);
const bob = as('bob', 'bobpw');
const poor = as('poor', 'poorpw');
const handle = (e: string, p: Record<string, string>, s = REMOTE) => t.srv.gateway.handle(req(e, p, s));

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const userId = async (name: string) => (await t.srv.services.users.byUsername(name))!.id;
const ledgerOf = async (name: string) =>
  t.srv.services.storage.db
    .selectFrom('tb_ledger')
    .select(['amount', 'reason', 'ref'])
    .where('userid', '=', await userId(name))
    .where('reason', 'in', ['sms', 'smsrefund'])
    .orderBy('id')
    .execute();
const smsRow = (id: number) => t.srv.services.sms.queue.byId(id);
const gwState = async (name: string) => {
  const r = await handle('smsgateways', admin);
  return r.rows?.find((x) => x.name === name) as Record<string, string | number> | undefined;
};

before(async () => {
  smsc = await TestSmsc.start({ receiptAfterMs: 10 });
  t = await startTestServer({
    defaultcountrycode: '1',
    apilimituser: '0',
    apilimitip: '0',
    smsretrydelay: '30',
    smsrefundfailed: '1',
  });
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  const users: Record<string, string>[] = [
    { u_username: 'bob', u_password: 'bobpw', u_credit: '5.00' },
    { u_username: 'poor', u_password: 'poorpw', u_credit: '0.01' },
    { u_username: 'alice', u_password: 'alicepw', u_did: '15557770000' },
  ];
  for (const p of users) assert.equal((await h('newuseri', { u_currency: 'USD', ...p })).ok, true);
  const csv =
    'prefix,destination,price,connectfee,minduration,increment,currency\n' +
    '1,USA,0.01,0.05,60,60,USD\n44,UK,0.02,0.07,60,60,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
});
after(async () => {
  await t.stop();
  await smsc.close();
});

test('without an SMS gateway every send command answers an ERROR naming addsmsgateway', async () => {
  for (const [cmd, p] of [
    ['sms', { ...bob, bnum: '15551230000', txt: 'hi' }],
    ['sendsms', { ...bob, telnumber: '15551230000', message: 'hi' }],
    ['sendsmsunicode', { ...bob, telnumber: '15551230000', message: 'hi' }],
    ['asendsms', { ...admin, telnumber: '15551230000', message: 'hi' }],
  ] as const) {
    const r = await handle(cmd, p);
    assert.equal(r.ok, false, cmd);
    assert.match(r.text, /no SMS gateway is configured: an admin adds one with addsmsgateway/);
  }
  assert.deepEqual(await ledgerOf('bob'), []);
});

test('a refused bind shows as refused with the SMSC status in smsgateways; the levels are enforced', async () => {
  const denied = await handle('addsmsgateway', { ...bob, name: 'x', host: '127.0.0.1', system_id: 'vox' });
  assert.equal(denied.ok, false);
  const r = await handle('addsmsgateway', {
    ...admin,
    name: 'wrongpw',
    host: '127.0.0.1',
    port: String(smsc.port),
    system_id: 'vox',
    password: 'nope',
  });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.fields?.password, 'set');
  const st = await until('refused', async () => {
    const g = await gwState('wrongpw');
    return g?.state === 'refused' && g;
  });
  assert.match(String(st.error), /bind refused by the SMSC: ESME_RINVPASWD \(0x0E\)/);
  assert.ok(smsc.refusedBinds >= 1);
  const row = await t.srv.services.storage.db
    .selectFrom('tb_smsgateways')
    .select('password_enc')
    .where('name', '=', 'wrongpw')
    .executeTakeFirstOrThrow();
  assert.match(row.password_enc, /^v1:/);
  assert.equal((await handle('delsmsgateway', { ...admin, name: 'wrongpw' })).ok, true);
  assert.equal(await gwState('wrongpw'), undefined);
  const bad = await handle('addsmsgateway', { ...admin, name: 'b', host: '127.0.0.1', system_id: 'v', bindmode: 'x' });
  assert.equal(bad.text, 'bindmode: expected transmitter, receiver or transceiver, got "x"');
});

test('bind, submit with a delivery receipt → delivered; charged once per message through the ledger', async () => {
  const r = await handle('addsmsgateway', {
    ...admin,
    name: 'main',
    host: '127.0.0.1',
    port: String(smsc.port),
    system_id: 'vox',
    password: 'secret',
    default_sender: 'VoxTest',
  });
  assert.equal(r.ok, true, r.text);
  await until('bound', async () => (await gwState('main'))?.state === 'bound');
  const s = await handle('sms', { ...bob, bnum: '+1 555 123 0001', txt: 'Hello {world} €5' });
  assert.equal(s.ok, true, s.text);
  assert.match(s.text, /^SMS \d+ accepted: 1 part\(s\) gsm7 to 15551230001, charged 0\.05 USD$/);
  const id = Number(s.fields?.id);
  const row = await until('delivered', async () => {
    const x = await smsRow(id);
    return x?.state === 'delivered' && x;
  });
  assert.equal(row.acked, 1);
  const got = smsc.submits.filter((x) => x.destination === '15551230001');
  assert.equal(got.length, 1);
  assert.equal(got[0]!.text, 'Hello {world} €5');
  assert.equal(got[0]!.source, 'VoxTest');
  assert.equal(got[0]!.dataCoding, 0);
  assert.equal(got[0]!.udh, undefined);
  assert.deepEqual(await ledgerOf('bob'), [{ amount: -50_000, reason: 'sms', ref: `sms:${id}` }]);
  const st = await handle('smsstatus', { ...bob, id: String(id) });
  assert.equal(st.ok, true);
  assert.equal(st.fields?.state, 'delivered');
  assert.equal(st.fields?.messageids, got[0]!.messageId);
  const list = await handle('smsstatus', bob);
  assert.equal(list.rows?.[0]?.id, id);
  // another user does not see it
  assert.equal((await handle('smsstatus', { ...poor, id: String(id) })).ok, false);
});

test('a long GSM message goes as 3 parts with the 8-bit-reference UDH; UCS-2 with sendsmsunicode', async () => {
  const text = 'Lorem ipsum [dolor] sit amet '.repeat(14).slice(0, 400);
  const s = await handle('sms', { ...bob, bnum: '15551230002', txt: text });
  assert.equal(s.ok, true, s.text);
  assert.equal(s.fields?.parts, 3);
  const id = Number(s.fields?.id);
  await until('delivered', async () => (await smsRow(id))?.state === 'delivered');
  const got = smsc.submits.filter((x) => x.destination === '15551230002');
  assert.equal(got.length, 3);
  const ref = got[0]!.udh![3]!;
  got.forEach((g, i) => {
    assert.equal(g.esmClass & 0x40, 0x40);
    assert.deepEqual([...g.udh!], [0x05, 0x00, 0x03, ref, 3, i + 1]);
  });
  assert.equal(got.map((g) => g.text).join(''), text);
  const u = await handle('sendsmsunicode', { ...bob, telnumber: '15551230003', message: 'Árvíztűrő tükörfúrógép 😀' });
  assert.equal(u.ok, true, u.text);
  await until('ucs2 delivered', async () => (await smsRow(Number(u.fields?.id)))?.state === 'delivered');
  const uc = smsc.submits.filter((x) => x.destination === '15551230003');
  assert.equal(uc.length, 1);
  assert.equal(uc[0]!.dataCoding, 8);
  assert.equal(uc[0]!.text, 'Árvíztűrő tükörfúrógép 😀');
  const sum = (await ledgerOf('bob')).reduce((n, e) => n + Number(e.amount), 0);
  assert.equal(sum, -50_000 * 5); // 1 + 3 + 1 parts
});

test('refusals: non-GSM characters, too many parts, no route, credit short: nothing charged, nothing queued', async () => {
  const before = await ledgerOf('bob');
  const count = async () => (await t.srv.services.sms.queue.recent(await userId('bob'), 1000)).length;
  const n0 = await count();
  const a = await handle('sendsms', { ...bob, telnumber: '15551230004', message: 'Grüße ő' });
  assert.equal(a.ok, false);
  assert.match(a.text, /outside the GSM 7-bit alphabet \("ő"\): send it with sendsmsunicode/);
  const b = await handle('sms', { ...bob, bnum: '15551230004', txt: 'x'.repeat(153 * 6 + 1) });
  assert.match(b.text, /needs 7 parts .* more than the 6 allowed/);
  const c = await handle('sms', { ...bob, bnum: '4930123456', txt: 'hi' });
  assert.match(c.text, /no rate for 4930123456/);
  const d = await handle('sms', { ...bob, anum: '15559999999', bnum: '15551230004', txt: 'hi' });
  assert.match(d.text, /sender "15559999999" is neither one of your numbers/);
  assert.deepEqual(await ledgerOf('bob'), before);
  assert.equal(await count(), n0);
  const p = await handle('sms', { ...poor, bnum: '15551230005', txt: 'hi' });
  assert.equal(p.ok, false);
  assert.match(p.text, /^insufficient credit: the message costs 0\.05 USD \(1 part\(s\)\), 0\.01 available$/);
  assert.deepEqual(await ledgerOf('poor'), []);
  assert.equal((await t.srv.services.sms.queue.recent(await userId('poor'), 10)).length, 0);
});

test('throttling (0x58) and queue full (0x14) are retried; a permanent refusal fails and is refunded', async () => {
  smsc.failNext.push(0x58, 0x14);
  const s = await handle('sms', { ...bob, bnum: '15551230006', txt: 'retry me' });
  const id = Number(s.fields?.id);
  const row = await until('delivered after retries', async () => {
    const x = await smsRow(id);
    return x?.state === 'delivered' && x;
  });
  assert.equal(row.attempts, 2);
  assert.equal(smsc.submits.filter((x) => x.destination === '15551230006').length, 1);
  smsc.failNext.push(0x0b); // ESME_RINVDSTADR
  const f = await handle('sms', { ...bob, bnum: '15551230007', txt: 'bad dest' });
  const fid = Number(f.fields?.id);
  const frow = await until('failed', async () => {
    const x = await smsRow(fid);
    return x?.state === 'failed' && x;
  });
  assert.match(frow.error, /main refused part 1: ESME_RINVDSTADR \(0x0B\)/);
  const entries = (await ledgerOf('bob')).filter((e) => e.ref === `sms:${fid}`);
  assert.deepEqual(entries, [
    { amount: -50_000, reason: 'sms', ref: `sms:${fid}` },
    { amount: 50_000, reason: 'smsrefund', ref: `sms:${fid}` },
  ]);
});

test('rebind after the SMSC drops the connection; the queue moves again', async () => {
  const binds = smsc.binds;
  smsc.drop();
  await until('rebound', async () => smsc.binds > binds && (await gwState('main'))?.state === 'bound');
  const s = await handle('asendsms', { ...admin, telnumber: '15551230008', message: 'after drop', anum: 'Operator' });
  assert.equal(s.ok, true, s.text);
  assert.equal(s.fields?.cost, '0.00');
  await until('delivered', async () => (await smsRow(Number(s.fields?.id)))?.state === 'delivered');
  assert.equal(smsc.submits.find((x) => x.destination === '15551230008')?.source, 'Operator');
});

test('the window: never more submit_sm outstanding than the gateway window; prefix routing and priority', async () => {
  const slow = await TestSmsc.start({ delayMs: 60 });
  try {
    const r = await handle('addsmsgateway', {
      ...admin,
      name: 'uk',
      host: '127.0.0.1',
      port: String(slow.port),
      system_id: 'vox',
      password: 'secret',
      prefix: '44',
      window: '3',
      default_sender: '4411',
    });
    assert.equal(r.ok, true, r.text);
    await until('uk bound', async () => (await gwState('uk'))?.state === 'bound');
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await handle('sms', { ...bob, bnum: `4477001100${String(i).padStart(2, '0')}`, txt: `n${i}` });
      assert.equal(s.ok, true, s.text);
      ids.push(Number(s.fields?.id));
    }
    await until('all submitted', async () => {
      for (const id of ids) if ((await smsRow(id))?.state !== 'submitted') return false;
      return true;
    });
    assert.equal(slow.submits.length, 12);
    assert.equal(slow.peakOutstanding, 3);
    assert.equal(smsc.submits.filter((x) => x.destination.startsWith('44')).length, 0);
    assert.ok(Number((await gwState('uk'))?.state === 'bound'));
  } finally {
    await handle('delsmsgateway', { ...admin, name: 'uk' });
    await slow.close();
  }
});

test('mobile-originated SMS to a user DID reach the user (offline: the IM store), concatenated parts reassembled', async () => {
  await until('bound', async () => (await gwState('main'))?.state === 'bound');
  assert.deepEqual(await smsc.mo('15559990000', '15557770000', 'hello alice'), [0]);
  const long = 'A long incoming message that came in two parts. '.repeat(5);
  assert.deepEqual(await smsc.mo('15559990001', '15557770000', long, 2), [0, 0]);
  assert.deepEqual(await smsc.mo('15559990002', '15550000000', 'to nobody'), [0]);
  const db = t.srv.services.storage.db;
  const rows = await until('stored', async () => {
    const r = await db.selectFrom('tb_imessages').select(['fromuser', 'body']).where('touser', '=', 'alice').execute();
    return r.length >= 2 && r;
  });
  assert.deepEqual(rows.map((r) => [r.fromuser, r.body]).sort(), [
    ['15559990000', 'hello alice'],
    ['15559990001', long],
  ]);
});

test('the API over SMS: "balance USER PASSWORD" to the service number is answered by SMS; a wrong password too', async () => {
  const before = smsc.submits.length;
  assert.deepEqual(await smsc.mo('15559990005', '15550001111', 'balance bob bobpw'), [0]);
  assert.deepEqual(await smsc.mo('15559990006', '15550001111', 'BALANCE bob wrong'), [0]);
  assert.deepEqual(await smsc.mo('15559990007', '15550001111', 'rating bob bobpw 15551234567'), [0]);
  await until('three answers', () => smsc.submits.length >= before + 3);
  const to = (n: string) => smsc.submits.find((s) => s.destination === n);
  const bal = (await t.srv.services.ledger.balance(await userId('bob')))!.credit;
  assert.match(to('15559990005')!.text, new RegExp(`^${(bal / 1e6).toFixed(2).replace('.', '\\.')}\\d* USD`));
  assert.equal(to('15559990005')!.source, '15550001111');
  assert.match(to('15559990006')!.text, /^ERROR: /);
  assert.match(to('15559990007')!.text, /0\.01/);
  // answers are the switch's own messages: not charged to anybody
  const answers = await t.srv.services.storage.db.selectFrom('tb_sms').select('cost').where('userid', '=', 0).execute();
  assert.ok(answers.length >= 3 && answers.every((a) => Number(a.cost) === 0));
});
