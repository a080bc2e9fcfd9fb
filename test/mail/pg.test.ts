/**
 * The e-mail queue and fax billing on PostgreSQL: 30 messages, three queue runs at once (as three processes
 * would) → each message arrives exactly once; a fax charged once and refunded once when the gateway refuses it;
 * the low-credit notice once for concurrent debits, and a failing notice undone without its debit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, API_KEY } from '../helpers/server.js';
import { usePgTestServer } from '../helpers/pg.js';
import { req, src } from '../helpers/source.js';
import { sql } from 'kysely';
import { Mailer } from '../../src/domain/mail/mailer.js';
import { FaxService } from '../../src/domain/fax/service.js';
import { LowCreditNotices } from '../../src/domain/mail/lowcredit.js';
import { startSmtp, type TestSmtp } from './smtp.js';

const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
let smtp: TestSmtp;
before(async () => {
  smtp = await startSmtp();
});
after(async () => smtp.close());

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n%%EOF\n');
const pg = usePgTestServer('mail', {
  usesip: 'false',
  apilimitip: '0',
  apilimituser: '0',
  mailqueueinterval: '0',
});

test('PostgreSQL: concurrent queue runs send each message once; a failed fax is refunded once', async (c) => {
  if (!pg.t) return c.skip(pg.skip);
  const t = pg.t;
  const s = t.srv.services;
  // the relay's port is known once it listens: configured the way an operator would (file + reload)
  s.config.persist({
    smtphost: '127.0.0.1',
    smtpport: String(smtp.port),
    smtpsecure: 'none',
    smtpfrom: 'q@voxswitch.test',
    faxmode: 'email',
    faxemaildomain: 'fax.example.net',
    faxprice: '0.25',
    faxpriceper: 'page',
  });
  const call = (e: string, p: Record<string, string>) =>
    t.srv.gateway.handle(req(e, { ...admin, ...p }, src('127.0.0.1')));
  for (let i = 0; i < 30; i++) {
    const r = await call('asendemail', { from: '', to: `n${i}@example.org`, subject: `m${i}`, message: 'x' });
    assert.equal(r.ok, true, r.text);
  }
  // two more queue workers on the same database, as other processes would run them
  const others = [new Mailer(s, s.webhooks), new Mailer(s, s.webhooks)];
  // each of those processes has its fax service listening to its own mailer's finished messages
  for (const m of others) new FaxService(s, m, s.webhooks);
  const reports = await Promise.all([s.mailer.runQueue(), ...others.map((m) => m.runQueue())]);
  assert.equal(
    reports.reduce((n, r) => n + r.sent, 0),
    30,
  );
  const subjects = smtp.received.map((r) => r.mail.subject).sort();
  assert.equal(subjects.length, 30);
  assert.equal(new Set(subjects).size, 30, 'no message twice');

  const made = await call('newuseri', { u_username: 'pgfax', u_password: 'pgfaxpw-123', u_credit: '2' });
  assert.equal(made.ok, true, made.text);
  mkdirSync(join(t.dataDir, 'files', 'fax'), { recursive: true });
  writeFileSync(join(t.dataDir, 'files', 'fax', 'a.pdf'), PDF);
  smtp.refuse.set('4930111@fax.example.net', { code: 550, times: Infinity });
  const user = { authkey: API_KEY, authid: 'pgfax', authpwd: 'pgfaxpw-123' };
  const fx = await t.srv.gateway.handle(
    req('sendfax', { ...user, to: '4930111', filename: 'a.pdf' }, src('127.0.0.1')),
  );
  assert.equal(fx.ok, true, fx.text);
  assert.equal(fx.fields!.cost, '0.50');
  const u = (await s.users.byUsername('pgfax'))!;
  assert.equal((await s.ledger.balance(u.id))!.credit, 1_500_000);
  await Promise.all([s.mailer.runQueue(), others[0]!.runQueue()]);
  assert.equal((await s.fax.status(Number(fx.fields!.id)))!.state, 'failed');
  assert.equal((await s.ledger.balance(u.id))!.credit, 2_000_000);
  const entries = await s.storage.db
    .selectFrom('tb_ledger')
    .select(['reason', 'amount'])
    .where('userid', '=', u.id)
    .execute();
  assert.deepEqual(
    entries.map((e) => [e.reason, Number(e.amount)]).filter(([r]) => String(r).startsWith('fax')),
    [
      ['fax', -500_000],
      ['fax refund', 500_000],
    ],
  );
  assert.deepEqual(await s.ledger.audit(), []);
});

test('PostgreSQL: concurrent debits crossing lowcreditlimit queue one notice; a failing notice leaves the debit', async (c) => {
  if (!pg.t) return c.skip(pg.skip);
  const t = pg.t;
  const s = t.srv.services;
  s.config.persist({
    smtphost: '127.0.0.1',
    smtpport: String(smtp.port),
    smtpsecure: 'none',
    smtpfrom: 'q@voxswitch.test',
    lowcreditlimit: '1.00',
  });
  const made = await t.srv.gateway.handle(
    req(
      'newuseri',
      { ...admin, u_username: 'pglow', u_password: 'pglowpw-123', u_email: 'low@example.org', u_credit: '1.20' },
      src('127.0.0.1'),
    ),
  );
  assert.equal(made.ok, true, made.text);
  const u = (await s.users.byUsername('pglow'))!;
  // six debits at once: the row lock orders them, exactly one of them crosses 1.00
  await Promise.all(Array.from({ length: 6 }, () => s.ledger.post({ userId: u.id, amount: -100_000, reason: 'test' })));
  assert.equal((await s.ledger.balance(u.id))!.credit, 600_000);
  const queued = await s.storage.db
    .selectFrom('tb_mail')
    .select('to_addr')
    .where('ref', '=', `lowcredit:${u.id}`)
    .execute();
  assert.deepEqual(queued, [{ to_addr: 'low@example.org' }]);
  // a notice whose statement fails is undone alone (its savepoint); the debit commits
  const failures: unknown[] = [];
  s.ledger.watchLowCredit({
    limit: () => 1_000_000,
    crossed: async (trx) => {
      await sql`select 1 / 0`.execute(trx);
    },
    failed: (e) => failures.push(e),
  });
  try {
    await s.ledger.post({ userId: u.id, amount: 600_000, reason: 'test' });
    assert.equal(await s.ledger.post({ userId: u.id, amount: -300_000, reason: 'test' }), 900_000);
    assert.equal(failures.length, 1);
  } finally {
    s.ledger.watchLowCredit(new LowCreditNotices(s.mailer, s.config, s.log));
  }
  assert.equal((await s.ledger.balance(u.id))!.credit, 900_000);
  assert.deepEqual(await s.ledger.audit(), []);
});
