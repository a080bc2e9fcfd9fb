/**
 * SIP MESSAGE to a phone number goes out as SMS: sipp (digest) sends MESSAGE to sip:NUMBER@server, the loopback
 * SMSC receives the text, the sender's account is charged as for any SMS; an account without credit gets 402 and
 * nothing is sent; a number with no gateway route gets a 4xx naming the cause.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { TestSmsc } from '../helpers/smsc.js';
import { skipWithout, toolPath } from '../helpers/tools.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

const run = promisify(execFile);
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
let t: TestServer;
let smsc: TestSmsc;
let port = 0;
let work: string;
const call = (e: string, p: Record<string, string>) =>
  t.srv.gateway.handle(req(e, { ...admin, ...p }, src('127.0.0.1')));

/** A sipp MESSAGE with digest (407, then credentials) expecting the final status `code`; the trace of what came back. */
function scenario(dir: string, code: number): string {
  const msg = (cseq: number, auth: boolean) => `  <send retrans="500"><![CDATA[

      MESSAGE sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field2]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: ${cseq} MESSAGE
${auth ? '      [field1]\n' : ''}      Max-Forwards: 70
      Content-Type: text/plain
      Content-Length: [len]

[field3]
    ]]></send>
`;
  const xml = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="message ${code}">
${msg(1, false)}  <recv response="407" auth="true"/>
${msg(2, true)}  <recv response="${code}"/>
</scenario>
`;
  const f = join(dir, `message_${code}.xml`);
  writeFileSync(f, xml);
  return f;
}

async function message(user: string, pw: string, number: string, text: string, code: number): Promise<string> {
  const inf = join(work, `${user}-${number}.csv`);
  writeFileSync(inf, `SEQUENTIAL\n${user};[authentication username=${user} password=${pw}];${number};${text}\n`);
  const trace = join(work, `${user}-${number}-${code}.msg`);
  const args = [`127.0.0.1:${port}`, '-sf', scenario(work, code), '-inf', inf, '-m', '1', '-i', '127.0.0.1'];
  args.push('-p', '0', '-nostdin', '-timeout', '10s', '-timeout_error', '-trace_msg', '-message_file', trace);
  const r = await run(toolPath('sipp'), args, { timeout: 20_000, cwd: work }).then(
    () => 0,
    (e: { code?: number }) => e.code ?? 1,
  );
  const seen = existsSync(trace) ? readFileSync(trace, 'utf8') : '';
  assert.equal(r, 0, `sipp expected ${code}: ${seen.slice(-1200)}`);
  return seen;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'vx-sipsms-'));
  smsc = await TestSmsc.start({ receiptAfterMs: 20 });
  t = await startTestServer({ defaultcountrycode: '1', apilimitip: '0', apilimituser: '0', authfailban: '0' });
  port = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  for (const [u, credit] of [
    ['alice', '5.00'],
    ['broke', '0.00'],
  ])
    assert.equal(
      (await call('newuseri', { u_username: u!, u_password: `${u}-pw-77`, u_credit: credit!, u_currency: 'USD' })).ok,
      true,
    );
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.05,60,60,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  const gw = { name: 'main', host: '127.0.0.1', port: String(smsc.port), system_id: 'vox', password: 'secret' };
  assert.equal((await call('addsmsgateway', { ...gw, default_sender: 'Vox', prefix: '1' })).ok, true);
  for (let i = 0; i < 200 && (await call('smsgateways', {})).rows?.[0]?.state !== 'bound'; i++)
    await new Promise((r) => setTimeout(r, 25));
});
after(async () => {
  await t?.stop();
  await smsc?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a MESSAGE to a phone number is answered 202 and reaches the SMSC as an SMS, charged once', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const out = await message('alice', 'alice-pw-77', '15551230001', 'hello from SIP', 202);
  assert.match(out, /SIP\/2\.0 202 Accepted \(SMS \d+\)/, out.slice(-800));
  for (let i = 0; i < 200 && !smsc.submits.some((s) => s.destination === '15551230001'); i++)
    await new Promise((r) => setTimeout(r, 25));
  const got = smsc.submits.filter((s) => s.destination === '15551230001');
  assert.equal(got.length, 1);
  // sipp ends every scenario line with CRLF, the body's last line too: the SMS carries the text without it
  assert.equal(got[0]!.text, 'hello from SIP');
  const alice = (await t.srv.services.users.byUsername('alice'))!.id;
  const charged = await t.srv.services.storage.db
    .selectFrom('tb_ledger')
    .select(['amount', 'reason'])
    .where('userid', '=', alice)
    .where('reason', '=', 'sms')
    .execute();
  assert.deepEqual(charged, [{ amount: -50_000, reason: 'sms' }]);
});

test('no credit: 402 with the reason, nothing sent; no route: a 4xx naming the cause; a user is still an IM', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const before = smsc.submits.length;
  const poor = await message('broke', 'broke-pw-77', '15551230002', 'no money', 402);
  assert.match(poor, /SIP\/2\.0 402 Payment Required \(.*credit/i, poor.slice(-800));
  const noRoute = await message('alice', 'alice-pw-77', '4420700000', 'to the UK', 404);
  assert.match(noRoute, /SIP\/2\.0 404 [^\n]*(gateway|route|rate|tariff)/i, noRoute.slice(-800));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(smsc.submits.length, before, 'nothing reached the SMSC');
  const im = await message('alice', 'alice-pw-77', 'broke', 'an IM, not an SMS', 202);
  assert.match(im, /SIP\/2\.0 202 Accepted\r?\n/);
  assert.equal(smsc.submits.length, before);
});
