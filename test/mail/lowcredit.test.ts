/**
 * The low-credit notice against a real SMTP server on loopback: a debit that takes an account below
 * lowcreditlimit (a call's CDR, a transfer, an SMS) queues one e-mail to the account's address, in the debit's
 * transaction; further debits below the limit send nothing; a credit back above it re-arms the notice; a refused
 * debit sends nothing; an account without an address gets no notice and its debit stands; lowcreditlimit=0 is off;
 * a notice that fails in the database is undone alone, the debit commits.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { LowCreditNotices } from '../../src/domain/mail/lowcredit.js';
import { startSmtp, type TestSmtp } from './smtp.js';

const LOCAL = src('127.0.0.1');
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const admin = as('admin', ADMIN_PASSWORD);
let t: TestServer;
let smtp: TestSmtp;
const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
const id = async (name: string) => (await t.srv.services.users.byUsername(name))!.id;
const credit = async (name: string) => (await t.srv.services.ledger.balance(await id(name)))!.credit;
let calls = 0;

/** A one-minute call of `name` to the US (0.30 a minute): its CDR is charged through the ledger. */
async function call(name: string): Promise<number> {
  const now = Date.now();
  const c = { callid: `lowcredit-${++calls}`, userId: await id(name), caller: name, callee: '15551234567' };
  const r = await t.srv.services.cdrs.recordCall({
    ...c,
    startAt: now - 61_000,
    connectAt: now - 60_000,
    endAt: now,
    duration: 60,
  });
  return r.charged;
}

async function checkmails(): Promise<string> {
  const r = await h('checkmails', admin);
  assert.equal(r.ok, true, r.text);
  return r.text;
}
const notices = async () =>
  t.srv.services.storage.db
    .selectFrom('tb_mail')
    .select(['to_addr', 'ref'])
    .where('ref', 'like', 'lowcredit:%')
    .execute();

before(async () => {
  smtp = await startSmtp();
  t = await startTestServer({
    usesip: 'false',
    apilimitip: '0',
    apilimituser: '0',
    defaultcountrycode: '1',
    smtphost: '127.0.0.1',
    smtpport: String(smtp.port),
    smtpsecure: 'none',
    smtpfrom: 'billing@voxswitch.test',
    smtpretrydelay: '0',
    mailqueueinterval: '0',
  });
  // in the config file (not --set), so that a test can change it
  t.srv.services.config.persist({ lowcreditlimit: '1.00' });
  for (const [u, email] of [
    ['carol', 'carol@example.com'],
    ['nomail', ''],
    ['rich', 'rich@example.com'],
  ]) {
    const p = { u_username: u!, u_password: `${u}-pw-1234`, u_email: email!, u_credit: '1.20', u_currency: 'USD' };
    const r = await h('newuseri', { ...admin, ...p });
    assert.equal(r.ok, true, r.text);
  }
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.30,0,60,60,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
});
after(async () => {
  await t?.stop();
  await smtp?.close();
});

test('a call taking the credit below lowcreditlimit sends one e-mail; the next call below it sends none', async () => {
  assert.equal(await call('carol'), 300_000);
  assert.equal(await credit('carol'), 900_000);
  assert.equal(await call('carol'), 300_000);
  assert.equal(await credit('carol'), 600_000);
  assert.deepEqual(await notices(), [{ to_addr: 'carol@example.com', ref: `lowcredit:${await id('carol')}` }]);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  const got = smtp.received.at(-1)!;
  assert.deepEqual(got.rcpt, ['carol@example.com']);
  assert.equal(got.mail.from?.value[0]?.address, 'billing@voxswitch.test');
  assert.equal(got.mail.subject, 'Low credit: 0.90 USD');
  assert.match(got.mail.text ?? '', /"carol" is now 0\.90 USD, below 1\.00 USD/);
});

test('a credit back above the limit re-arms it: a transfer crossing again sends a second notice', async () => {
  const carol = as('carol', 'carol-pw-1234');
  assert.equal((await h('addcredit', { ...admin, username: 'carol', credit: '1.00' })).ok, true);
  assert.equal(await credit('carol'), 1_600_000);
  // a refused debit (more than the credit) is rolled back with its notice: nothing queued
  const refused = await h('transfercredit', { ...carol, username: 'rich', credit: '5.00' });
  assert.equal(refused.ok, false);
  assert.equal((await notices()).length, 1);
  const r = await h('transfercredit', { ...carol, username: 'rich', credit: '0.70' });
  assert.equal(r.ok, true, r.text);
  assert.equal(await credit('carol'), 900_000);
  assert.equal((await notices()).length, 2);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  assert.equal(smtp.received.at(-1)!.mail.subject, 'Low credit: 0.90 USD');
  // the receiver of the transfer was credited: nothing for rich
  assert.equal(smtp.received.filter((m) => m.rcpt.includes('rich@example.com')).length, 0);
});

test('no e-mail address: no notice, the debit stands; lowcreditlimit=0 is off', async () => {
  assert.equal(await call('nomail'), 300_000);
  assert.equal(await credit('nomail'), 900_000);
  assert.equal((await notices()).length, 2);
  t.srv.services.config.persist({ lowcreditlimit: '0' });
  try {
    assert.equal((await h('addcredit', { ...admin, username: 'rich', credit: '0.10' })).ok, true);
    assert.equal(await credit('rich'), 2_000_000);
    for (let i = 0; i < 4; i++) await call('rich');
    assert.equal(await credit('rich'), 800_000);
    assert.equal((await notices()).length, 2);
  } finally {
    t.srv.services.config.persist({ lowcreditlimit: '1.00' });
  }
  assert.deepEqual(await t.srv.services.ledger.audit(), []);
});

test('a notice whose statement fails is undone alone (SQLite savepoint): the debit commits', async () => {
  const s = t.srv.services;
  const failures: unknown[] = [];
  s.ledger.watchLowCredit({
    limit: () => 1_000_000,
    crossed: async (trx) => {
      await trx
        .insertInto('tb_mail')
        .values({ id: 1 } as never)
        .execute();
    },
    failed: (e) => failures.push(e),
  });
  try {
    const uid = await id('rich');
    await s.ledger.post({ userId: uid, amount: 400_000, reason: 'test' });
    assert.equal(await credit('rich'), 1_200_000);
    assert.equal(await s.ledger.post({ userId: uid, amount: -300_000, reason: 'test' }), 900_000);
    assert.equal(failures.length, 1);
  } finally {
    s.ledger.watchLowCredit(new LowCreditNotices(s.mailer, s.config, s.log));
  }
  assert.equal(await credit('rich'), 900_000);
  assert.deepEqual(await s.ledger.audit(), []);
});
