/** The daily report e-mailed to dailyreportemail through the e-mail queue, received by a loopback SMTP server. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { startSmtp, type TestSmtp } from './smtp.js';

const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
let t: TestServer;
let smtp: TestSmtp;
const call = (e: string, p: Record<string, string> = {}) =>
  t.srv.gateway.handle(req(e, { ...admin, ...p }, src('203.0.113.9')));

before(async () => {
  smtp = await startSmtp();
  t = await startTestServer({
    usesip: 'false',
    smtphost: '127.0.0.1',
    smtpport: String(smtp.port),
    smtpsecure: 'none',
    smtpfrom: 'switch@voxswitch.test',
    smtpretrydelay: '0',
    mailqueueinterval: '0',
    dailyreportemail: 'ops@example.com, noc@example.com',
  });
});
after(async () => {
  await t?.stop();
  await smtp?.close();
});

test('dailyreport e-mails the text report to every dailyreportemail address', async () => {
  const r = await call('dailyreport', { date: '2026-11-30' });
  assert.equal(r.ok, true, r.text);
  const db = t.srv.services.storage.db;
  const queued = async () => db.selectFrom('tb_mail').selectAll().where('ref', '=', 'report:2026-11-30').execute();
  for (let i = 0; i < 100 && !(await queued()).length; i++) await new Promise((x) => setTimeout(x, 20));
  assert.equal((await queued()).length, 1, 'one message queued');
  const sent = await call('checkmails');
  assert.equal(sent.ok, true, sent.text);
  for (let i = 0; i < 100 && !smtp.received.length; i++) await new Promise((x) => setTimeout(x, 50));
  assert.equal(smtp.received.length, 1);
  const m = smtp.received[0]!;
  assert.deepEqual(m.rcpt.sort(), ['noc@example.com', 'ops@example.com']);
  assert.match(String(m.mail.subject), /^voxswitch daily report 2026-11-30: 0 calls, 0 minutes/);
  assert.equal(m.mail.from?.value[0]?.address, 'switch@voxswitch.test');
  assert.match(String(m.mail.text), /2026-11-30/);
});
