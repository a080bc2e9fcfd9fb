/**
 * E-mail end to end with a real SMTP server on loopback (smtp-server, STARTTLS with a self-signed certificate,
 * AUTH): what arrives (From, To, Subject, Date, Message-ID, UTF-8 subject and body), the from-address rules,
 * header injection and bad addresses refused, a 4xx retried and sent, a 5xx failed with a mail.failed webhook, a
 * relay that is down retried, the checkmails report, and the ERROR without smtphost.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { makeSelfSigned } from '../../src/cli/gencert.js';
import { startSmtp, type TestSmtp } from './smtp.js';

const LOCAL = src('127.0.0.1');
const as = (user: string, pw: string) => ({ authkey: API_KEY, authid: user, authpwd: pw });
const admin = as('admin', ADMIN_PASSWORD);
const bob = as('bob', 'bobpw-1234');
let t: TestServer;
let smtp: TestSmtp;
let dir: string;
let hook: Server;
const hookBodies: Array<{ headers: Record<string, unknown>; body: string }> = [];

const call = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, src('203.0.113.9')));
const checkmails = async () => {
  const r = await call('checkmails', admin);
  assert.equal(r.ok, true, r.text);
  return r.text;
};

before(async () => {
  const tls = await makeSelfSigned('localhost');
  smtp = await startSmtp({ tls, auth: { user: 'relayuser', pass: 'relay-secret-9' } });
  dir = mkdtempSync(join(tmpdir(), 'voxswitch-mail-'));
  mkdirSync(join(dir, 'tls'));
  writeFileSync(join(dir, 'tls', 'smtp-ca.pem'), tls.cert);
  t = await startTestServer(
    {
      usesip: 'false',
      apilimitip: '0',
      apilimituser: '0',
      smtphost: 'localhost',
      smtpport: String(smtp.port),
      smtpsecure: 'starttls',
      smtpcafile: 'tls/smtp-ca.pem',
      smtpuser: 'relayuser',
      smtppassword: 'relay-secret-9',
      smtpfrom: 'switch@voxswitch.test',
      smtptimeout: '3',
      smtpretrydelay: '0',
      mailqueueinterval: '0',
    },
    dir,
  );
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  const made = await h('newuseri', { u_username: 'bob', u_password: 'bobpw-1234', u_email: 'bob@example.com' });
  assert.equal(made.ok, true, made.text);
  hook = createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      hookBodies.push({ headers: rq.headers, body: Buffer.concat(chunks).toString('utf8') });
      rs.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  const added = await call('addwebhook', { ...admin, url, events: 'mail.failed', secret: 'a-webhook-secret-123' });
  assert.equal(added.ok, true, added.text);
});

after(async () => {
  await t?.stop();
  await smtp?.close();
  hook?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('sendmail over STARTTLS with AUTH: headers, UTF-8 subject and body arrive; checkmails reports it', async () => {
  const subject = 'Grüße – 日本 ✓';
  const message = 'Héllo wörld,\nzweite Zeile: ünïcödé ✓';
  const r = await call('sendmail', { ...bob, from: 'bob@example.com', to: 'alice@example.org', subject, message });
  assert.equal(r.ok, true, r.text);
  const id = String(r.fields!.id);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  const got = smtp.received.at(-1)!;
  assert.equal(got.secure, true, 'STARTTLS was used');
  assert.equal(got.user, 'relayuser');
  assert.deepEqual(got.rcpt, ['alice@example.org']);
  assert.equal(got.mail.subject, subject);
  assert.equal(got.mail.text?.trim(), message);
  assert.equal(got.mail.from?.value[0]?.address, 'bob@example.com');
  assert.equal((got.mail.to as { value: Array<{ address: string }> }).value[0]!.address, 'alice@example.org');
  assert.equal(got.mail.messageId, r.fields!.messageid);
  assert.ok(got.mail.date instanceof Date && Math.abs(got.mail.date.getTime() - Date.now()) < 60_000);
  assert.match(got.raw.toString('latin1'), /^Subject: =\?UTF-8\?/im, 'the subject is MIME-encoded UTF-8');
  const st = await call('mailstatus', { ...bob, id });
  assert.equal(st.fields!.state, 'sent');
  assert.equal(st.fields!.attempts, 1);
});

test('from-address rules: a user sends only as their own e-mail or smtpfrom; asendemail as anyone', async () => {
  const base = { to: 'x@example.org', subject: 's', message: 'm' };
  const bad = await call('sendmail', { ...bob, ...base, from: 'ceo@bank.example' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /may not send as ceo@bank\.example; allowed: your account e-mail \(bob@example\.com\)/);
  const dflt = await call('sendmail', { ...bob, ...base, from: '' });
  assert.equal(dflt.ok, true, dflt.text);
  const mine = await call('sendmail', { ...bob, ...base, from: 'switch@voxswitch.test' });
  assert.equal(mine.ok, true, mine.text);
  const adm = await call('asendemail', { ...admin, ...base, from: 'ceo@bank.example' });
  assert.equal(adm.ok, true, adm.text);
  const notAdmin = await call('asendemail', { ...bob, ...base, from: 'bob@example.com' });
  assert.equal(notAdmin.ok, false);
  assert.equal(await checkmails(), 'sent 3, failed 0, retry 0, queued 0');
  assert.equal(smtp.received.at(-3)!.mail.from?.value[0]?.address, 'switch@voxswitch.test');
  assert.equal(smtp.received.at(-1)!.mail.from?.value[0]?.address, 'ceo@bank.example');
});

test('header injection and bad addresses are refused and nothing is queued', async () => {
  const count = async () =>
    Number(
      (await t.srv.services.storage.db
        .selectFrom('tb_mail')
        .select((e) => e.fn.countAll().as('n'))
        .executeTakeFirst())!.n,
    );
  const before = await count();
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ subject: 'Hi\r\nBcc: victim@example.net' }, /subject: line breaks are not allowed \(header injection refused\)/],
    [{ to: 'a@example.org\nBcc: v@example.net' }, /to: line breaks/],
    [{ from: 'bob@example.com\r\nX-Evil: 1' }, /from: line breaks/],
    [{ to: 'not-an-address' }, /to: "not-an-address" is not an e-mail address/],
    [{ to: 'a@b' }, /is not an e-mail address/],
    [{ to: '' }, /to: missing/],
  ];
  for (const [p, re] of cases) {
    const r = await call('sendmail', { ...bob, from: 'bob@example.com', to: 'a@example.org', subject: 's', ...p });
    assert.equal(r.ok, false, JSON.stringify(p));
    assert.match(r.text, re);
  }
  assert.equal(await count(), before);
});

test('a 4xx answer is retried later and sent; a 5xx fails and fires a signed mail.failed webhook', async () => {
  smtp.refuse.set('busy@example.org', { code: 451, times: 1 });
  smtp.refuse.set('gone@example.org', { code: 550, times: Infinity });
  const a = await call('sendmail', { ...bob, from: '', to: 'busy@example.org', subject: 'retry', message: 'x' });
  const b = await call('sendmail', { ...bob, from: '', to: 'gone@example.org', subject: 'fail', message: 'y' });
  assert.equal(await checkmails(), 'sent 0, failed 1, retry 1, queued 1');
  const sa = await call('mailstatus', { ...bob, id: String(a.fields!.id) });
  assert.equal(sa.fields!.state, 'queued');
  assert.match(String(sa.fields!.error), /451/);
  const sb = await call('mailstatus', { ...bob, id: String(b.fields!.id) });
  assert.equal(sb.fields!.state, 'failed');
  assert.match(String(sb.fields!.error), /550/);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  assert.equal(smtp.received.at(-1)!.mail.subject, 'retry');
  // the webhook queue (its loop is off here: mailqueueinterval=0) delivers the event
  const d = await t.srv.services.webhooks.loop.run();
  assert.equal(d.delivered, 1);
  const ev = JSON.parse(hookBodies.at(-1)!.body);
  assert.equal(ev.kind, 'mail.failed');
  assert.equal(ev.data.id, Number(b.fields!.id));
  assert.equal(ev.data.to, 'gone@example.org');
  assert.equal(hookBodies.at(-1)!.headers['x-voxswitch-event'], 'mail.failed');
  assert.equal(hookBodies.at(-1)!.headers['x-voxswitch-id'], ev.id);
});

test('a relay that is down: retried, then sent once it is back', async () => {
  const port = smtp.port;
  await smtp.close();
  const r = await call('sendmail', { ...bob, from: '', to: 'later@example.org', subject: 'down', message: 'z' });
  assert.equal(await checkmails(), 'sent 0, failed 0, retry 1, queued 1');
  const st = await call('mailstatus', { ...bob, id: String(r.fields!.id) });
  assert.match(String(st.fields!.error), /ECONNREFUSED|ECONNECTION|connect/i);
  await smtp.listen(port);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  assert.equal(smtp.received.at(-1)!.mail.subject, 'down');
});

test('mailstatus shows only what the caller may see; bad ids are refused', async () => {
  const r = await call('asendemail', { ...admin, from: '', to: 'y@example.org', subject: 'adm', message: 'q' });
  const other = await call('mailstatus', { ...bob, id: String(r.fields!.id) });
  assert.equal(other.ok, false);
  assert.match(other.text, /no e-mail/);
  assert.match((await call('mailstatus', { ...bob, id: 'x' })).text, /id: expected/);
  await checkmails();
});

test('a forgotten-password reset sends the account a notice (never the password)', async () => {
  const bobUser = (await t.srv.services.users.byUsername('bob'))!;
  await t.srv.services.users.setForgot(bobUser.id, 'Pet?', 'Rex');
  const r = await t.srv.gateway.handle(
    req('forgotpasswordanswer', { authkey: API_KEY, email: 'bob@example.com', forgotpasswordanswer: 'rex' }, LOCAL),
  );
  assert.equal(r.ok, true, r.text);
  assert.equal(await checkmails(), 'sent 1, failed 0, retry 0, queued 0');
  const got = smtp.received.at(-1)!;
  assert.deepEqual(got.rcpt, ['bob@example.com']);
  assert.equal(got.mail.subject, 'Your password was reset');
  assert.match(got.mail.text ?? '', /The password of the account bob was reset/);
  assert.ok(!(got.mail.text ?? '').includes(String(r.fields!.password)), 'the new password is not mailed');
});

test('without smtphost every e-mail command answers an ERROR naming the options', async () => {
  const bare = await startTestServer({ usesip: 'false' });
  try {
    for (const [e, p] of [
      ['sendmail', { to: 'a@example.org', subject: 's', message: 'm' }],
      ['asendemail', { to: 'a@example.org', subject: 's', message: 'm' }],
      ['checkmails', {}],
    ] as const) {
      const r = await bare.srv.gateway.handle(req(e, { ...admin, ...p }, LOCAL));
      assert.equal(r.ok, false, e);
      assert.match(r.text, /e-mail is not configured: set smtphost \(with smtpport, smtpsecure/);
    }
  } finally {
    await bare.stop();
  }
});
