/**
 * sendfax end to end: by e-mail (a real SMTP server on loopback receives the PDF as an attachment to
 * NUMBER@domain) and by HTTP (a node:http fax API receives the TIFF); pages counted, charged once per page or per
 * fax through the ledger, refused when credit is short, refunded when the fax fails; the confined fax folder (no
 * `..`, absolute paths, symlinks out, NUL, oversize, other formats); the ERROR of faxmode=none naming T.38.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { startSmtp, type TestSmtp } from '../mail/smtp.js';
import { faxDocument, tiffPages } from '../../src/domain/fax/pages.js';

const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
const fred = { authkey: API_KEY, authid: 'fred', authpwd: 'fredpw-1234' };
const poor = { authkey: API_KEY, authid: 'poor', authpwd: 'poorpw-1234' };

const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
    '2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n' +
    '3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n4 0 obj << /Type/Page /Parent 2 0 R >> endobj\n' +
    '5 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n',
  'latin1',
);

/** A little-endian TIFF with `n` IFDs of one entry each (enough for the page walk). */
function tiff(n: number): Buffer {
  const b = Buffer.alloc(8 + n * 18);
  b.write('II*\0', 0, 'latin1');
  b.writeUInt32LE(8, 4);
  for (let i = 0; i < n; i++) {
    const off = 8 + i * 18;
    b.writeUInt16LE(1, off);
    b.writeUInt16LE(256, off + 2); // ImageWidth
    b.writeUInt32LE(i + 1 < n ? off + 18 : 0, off + 14);
  }
  return b;
}

async function credit(t: TestServer, user: string): Promise<number> {
  const u = await t.srv.services.users.byUsername(user);
  return (await t.srv.services.ledger.balance(u!.id))!.credit;
}

async function users(t: TestServer): Promise<void> {
  const h = (p: Record<string, string>) => t.srv.gateway.handle(req('newuseri', { ...admin, ...p }, src('127.0.0.1')));
  assert.equal(
    (await h({ u_username: 'fred', u_password: 'fredpw-1234', u_credit: '1.00', u_did: '4930999' })).ok,
    true,
  );
  assert.equal((await h({ u_username: 'poor', u_password: 'poorpw-1234', u_credit: '0.05' })).ok, true);
}

test('page counts: PDF page objects, TIFF IFD chain; other formats refused', () => {
  assert.deepEqual(faxDocument(PDF), { type: 'application/pdf', pages: 3 });
  assert.deepEqual(faxDocument(tiff(2)), { type: 'image/tiff', pages: 2 });
  assert.equal(tiffPages(tiff(7)), 7);
  const loop = tiff(2);
  loop.writeUInt32LE(8, 8 + 18 + 14); // the second IFD points back to the first
  assert.equal(tiffPages(loop), 2);
  assert.throws(() => faxDocument(Buffer.from('hello')), /not a PDF or TIFF/);
});

let smtp: TestSmtp;
let t: TestServer;
let faxDir: string;
const call = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, src('203.0.113.5')));

before(async () => {
  smtp = await startSmtp();
  t = await startTestServer({
    usesip: 'false',
    apilimitip: '0',
    apilimituser: '0',
    smtphost: '127.0.0.1',
    smtpport: String(smtp.port),
    smtpsecure: 'none',
    smtpfrom: 'fax@voxswitch.test',
    mailqueueinterval: '0',
    faxmode: 'email',
    faxemaildomain: 'fax.example.net',
    faxprice: '0.10',
    faxpriceper: 'page',
    faxmaxsize: '100000',
  });
  await users(t);
  faxDir = join(t.dataDir, 'files', 'fax');
  mkdirSync(join(faxDir, 'sub'), { recursive: true });
  writeFileSync(join(faxDir, 'report.pdf'), PDF);
  writeFileSync(join(faxDir, 'sub', 'two.tif'), tiff(2));
  writeFileSync(join(faxDir, 'note.txt'), 'just text');
  writeFileSync(join(faxDir, 'big.pdf'), Buffer.concat([PDF, Buffer.alloc(200_000)]));
  writeFileSync(join(t.dataDir, 'outside.pdf'), PDF);
  symlinkSync(join(t.dataDir, 'outside.pdf'), join(faxDir, 'link.pdf'));
});
after(async () => {
  await t?.stop();
  await smtp?.close();
});

test('fax by e-mail: the PDF arrives attached to NUMBER@domain; 3 pages charged once', async () => {
  const r = await call('sendfax', { ...fred, from: '', to: '+49 30 123456', filename: 'report.pdf' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.fields!.pages, 3);
  assert.equal(r.fields!.cost, '0.30');
  assert.equal(r.fields!.from, '4930999', 'the account DID by default');
  assert.equal(await credit(t, 'fred'), 700_000);
  assert.equal((await call('checkmails', admin)).text, 'sent 1, failed 0, retry 0, queued 0');
  const got = smtp.received.at(-1)!;
  assert.deepEqual(got.rcpt, ['4930123456@fax.example.net']);
  assert.equal(got.mail.attachments.length, 1);
  const a = got.mail.attachments[0]!;
  assert.equal(a.filename, 'report.pdf');
  assert.equal(a.contentType, 'application/pdf');
  assert.ok(a.content.equals(PDF));
  const st = await call('faxstatus', { ...fred, id: String(r.fields!.id) });
  assert.equal(st.fields!.state, 'sent');
  const entries = await t.srv.services.storage.db
    .selectFrom('tb_ledger')
    .selectAll()
    .where('reason', 'like', 'fax%')
    .execute();
  assert.deepEqual(
    entries.map((e) => [e.reason, Number(e.amount), e.ref]),
    [['fax', -300_000, `fax:${r.fields!.id}`]],
  );
});

test('a fax the gateway refuses (5xx) fails and is refunded once; credit short is refused with nothing stored', async () => {
  smtp.refuse.set('4930555@fax.example.net', { code: 554, times: Infinity });
  const before = await credit(t, 'fred');
  const r = await call('sendfax', { ...fred, from: '4930999', to: '4930555', filename: 'sub/two.tif' });
  assert.equal(r.ok, true, r.text);
  assert.equal(await credit(t, 'fred'), before - 200_000);
  assert.equal((await call('checkmails', admin)).text, 'sent 0, failed 1, retry 0, queued 0');
  const st = await call('faxstatus', { ...fred, id: String(r.fields!.id) });
  assert.equal(st.fields!.state, 'failed');
  assert.match(String(st.fields!.error), /554/);
  assert.equal(await credit(t, 'fred'), before, 'refunded');
  await call('checkmails', admin);
  assert.equal(await credit(t, 'fred'), before, 'refunded once');

  const db = t.srv.services.storage.db;
  const rows = async () => (await db.selectFrom('tb_fax').select('id').execute()).length;
  const n = await rows();
  const short = await call('sendfax', { ...poor, to: '4930123', filename: 'report.pdf' });
  assert.equal(short.ok, false);
  assert.match(short.text, /credit short: the fax \(3 page\(s\)\) costs 0\.30 USD, the balance is 0\.05 USD/);
  assert.equal(await rows(), n);
  assert.equal(await credit(t, 'poor'), 50_000);
});

test('the fax folder is confined', async () => {
  const n = (await t.srv.services.storage.db.selectFrom('tb_fax').select('id').execute()).length;
  const cases: Array<[string, RegExp]> = [
    ['../outside.pdf', /filename: "\.\." is not allowed/],
    ['sub/../../outside.pdf', /"\.\." is not allowed/],
    [join(t.dataDir, 'outside.pdf'), /absolute paths are not allowed/],
    ['link.pdf', /leads outside the fax folder/],
    ['a\0b.pdf', /NUL characters/],
    ['big.pdf', /more than the limit of 100000/],
    ['note.txt', /not a PDF or TIFF/],
    ['missing.pdf', /no such file "missing\.pdf"/],
    ['sub', /not a regular file/],
    ['', /filename: missing/],
  ];
  for (const [filename, re] of cases) {
    const r = await call('sendfax', { ...fred, to: '4930123', filename });
    assert.equal(r.ok, false, filename);
    assert.match(r.text, re, filename);
  }
  const badTo = await call('sendfax', { ...fred, to: 'fax-me', filename: 'report.pdf' });
  assert.match(badTo.text, /to: expected a fax number/);
  assert.equal((await t.srv.services.storage.db.selectFrom('tb_fax').select('id').execute()).length, n);
});

test('fax over HTTP: the TIFF is POSTed to the URL template; 503 retried, then sent; priced per fax', async () => {
  const hits: Array<{ url: string; type: string; auth: string; body: Buffer }> = [];
  const api: Server = createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      const body = Buffer.concat(chunks);
      hits.push({
        url: rq.url!,
        type: String(rq.headers['content-type']),
        auth: String(rq.headers.authorization),
        body,
      });
      rs.statusCode = hits.length === 1 ? 503 : 200;
      rs.end();
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-fax-'));
  mkdirSync(join(dir, 'files', 'fax'), { recursive: true });
  writeFileSync(join(dir, 'files', 'fax', 'two.tif'), tiff(2));
  const h = await startTestServer(
    {
      usesip: 'false',
      mailqueueinterval: '0',
      faxmode: 'http',
      faxhttpurl: `http://127.0.0.1:${port}/send?to={to}&from={from}`,
      faxhttpauth: 'Bearer fax-token-1',
      faxprice: '0.5',
      faxpriceper: 'fax',
      faxretrydelay: '0',
    },
    dir,
  );
  try {
    await users(h);
    const r = await h.srv.gateway.handle(
      req('sendfax', { ...fred, from: '123', to: '+4930777', filename: 'two.tif' }, src('127.0.0.1')),
    );
    assert.equal(r.ok, true, r.text);
    assert.equal(r.fields!.pages, 2);
    assert.equal(r.fields!.cost, '0.50');
    assert.deepEqual(await h.srv.services.fax.loop.run(), { sent: 0, failed: 0, retry: 1 });
    assert.deepEqual(await h.srv.services.fax.loop.run(), { sent: 1, failed: 0, retry: 0 });
    assert.equal(hits.length, 2);
    assert.equal(hits[1]!.url, '/send?to=%2B4930777&from=123');
    assert.equal(hits[1]!.type, 'image/tiff');
    assert.equal(hits[1]!.auth, 'Bearer fax-token-1');
    assert.ok(hits[1]!.body.equals(tiff(2)));
    const st = await h.srv.services.fax.status(Number(r.fields!.id));
    assert.equal(st!.state, 'sent');
    assert.equal(st!.attempts, 2);
    assert.equal(await credit(h, 'fred'), 500_000);
  } finally {
    await h.stop();
    api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('faxmode=none: an ERROR that says T.38 over SIP is not supported and how to configure a fax service', async () => {
  const bare = await startTestServer({ usesip: 'false' });
  try {
    const r = await bare.srv.gateway.handle(
      req('sendfax', { ...admin, to: '4930123', filename: 'x.pdf' }, src('127.0.0.1')),
    );
    assert.equal(r.ok, false);
    assert.match(r.text, /fax over SIP \(T\.38\) is not supported: set faxmode=email with faxemaildomain/);
  } finally {
    await bare.stop();
  }
});
