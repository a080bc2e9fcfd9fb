/** showcfg over HTTP (curl): every option with its source and default; the secrets never in the answer. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, SALT, type TestServer } from '../helpers/server.js';
import { curl } from '../helpers/clients.js';
import { maskUrl } from '../../src/config/mask.js';

const SMTP_SECRET = 'Smtp-Pass-9f8e7d';
const DB_SECRET = 'Db-Pass-77aa';
let t: TestServer;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vx-showcfg-'));
  writeFileSync(join(dir, 'voxswitch.conf'), `smtppassword=${SMTP_SECRET}\nsmtphost=mail.example.com\n`);
  t = await startTestServer({ faxhttpurl: `https://fax.example.com/send?to={to}&key=${DB_SECRET}` }, dir);
});
after(async () => {
  await t?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('showcfg lists every option with its source; secrets and passwords in URLs are masked', async () => {
  const r = await curl([t.url(`/mvapireq/?apientry=showcfg&authkey=${API_KEY}&format=json`)]);
  assert.equal(r.status, 200, r.body);
  for (const secret of [SMTP_SECRET, DB_SECRET, API_KEY, SALT]) assert.ok(!r.body.includes(secret), `${secret} shown`);
  const text = (await curl([t.url(`/mvapireq/?apientry=showcfg&authkey=${API_KEY}`)])).body;
  for (const secret of [SMTP_SECRET, DB_SECRET, API_KEY, SALT]) assert.ok(!text.includes(secret), `${secret} shown`);
  assert.match(text, /^smtppassword=\*\*\*$/m);
  assert.match(text, /^apiv2key=\*\*\*$/m);
  assert.match(text, /^smtphost=mail\.example\.com$/m);
  assert.match(text, /^faxhttpurl=https:\/\/fax\.example\.com\/send\?to=\{to\}&key=\*\*\*$/m);
  const rows = (await t.srv.gateway.handle({
    entry: 'showcfg',
    params: {},
    source: { transport: 'http', ip: '127.0.0.1', port: 1 },
    format: 'json',
  } as never)) as { rows?: Array<Record<string, string>> };
  const by = new Map((rows.rows ?? []).map((x) => [x.option, x]));
  assert.ok(by.size > 100, `${by.size} options`);
  assert.equal(by.get('smtphost')!.from, 'config file');
  assert.equal(by.get('apiv2key')!.from, 'command line');
  assert.equal(by.get('bantime')!.from, 'default');
  assert.equal(by.get('bantime')!.value, by.get('bantime')!.default);
});

test('maskUrl hides a password in a URL and secret query values, nothing else', () => {
  assert.equal(maskUrl('postgres://vox:s3cret@db:5432/vox'), 'postgres://vox:***@db:5432/vox');
  assert.equal(maskUrl('redis://:pw@127.0.0.1:6379'), 'redis://:***@127.0.0.1:6379');
  assert.equal(maskUrl('https://h/x?to=1&token=abc&b=2'), 'https://h/x?to=1&token=***&b=2');
  assert.equal(maskUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
});
