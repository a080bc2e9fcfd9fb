/**
 * The file commands over HTTP with curl: putfile/getfile round trip (base64) under the data dir, pputfile/pgetfile
 * under the web file storage; every traversal trick, the secrets, a symlink out, a huge file and bad base64 refused,
 * nothing written outside the folder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { curl } from '../helpers/clients.js';

let t: TestServer;
let outside: string;

before(async () => {
  outside = mkdtempSync(join(tmpdir(), 'vx-outside-'));
  writeFileSync(join(outside, 'secret.txt'), 'outside-secret');
  t = await startTestServer({ filemaxsize: '65536' });
});
after(async () => {
  await t?.stop();
  rmSync(outside, { recursive: true, force: true });
});

let n = 0;
/** A POST with every parameter form-encoded by curl (a value with NUL goes through a file: argv cannot hold it). */
async function call(entry: string, params: Record<string, string>) {
  const form = Object.entries({ apientry: entry, authkey: API_KEY, format: 'text', ...params }).flatMap(([k, v]) => {
    if (!v.includes('\u0000')) return ['--data-urlencode', `${k}=${v}`];
    const f = join(outside, `value-${n++}`);
    writeFileSync(f, v);
    return ['--data-urlencode', `${k}@${f}`];
  });
  const r = await curl([...form, t.url('/mvapireq/')]);
  const text = r.body.replace(/\r\n(OK|ERROR)$/, '');
  return { ok: r.body.endsWith('\r\nOK'), text, body: r.body };
}

test('putfile then getfile and file return the same bytes; the write is atomic (no part file left)', async () => {
  const data = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x41]);
  const put = await call('putfile', { filename: 'media/prompts/hello.bin', filedata: data.toString('base64') });
  assert.equal(put.ok, true, put.body);
  assert.match(put.text, /saved \(8 bytes\)/);
  assert.deepEqual(readFileSync(join(t.dataDir, 'media/prompts/hello.bin')), data);
  for (const entry of ['getfile', 'file']) {
    const got = await call(entry, { filename: 'media/prompts/hello.bin' });
    assert.equal(got.ok, true, got.body);
    assert.deepEqual(Buffer.from(got.text, 'base64'), data);
  }
  // replacing it leaves no temporary file beside it
  assert.equal((await call('putfile', { filename: 'media/prompts/hello.bin', filedata: 'QUJD' })).ok, true);
  assert.deepEqual(readdirSync(join(t.dataDir, 'media/prompts')), ['hello.bin']);
  assert.equal(readFileSync(join(t.dataDir, 'media/prompts/hello.bin'), 'utf8'), 'ABC');
});

test('pputfile and pgetfile use the web file storage, apart from the server directory', async () => {
  assert.equal(
    (await call('pputfile', { filename: 'docs/a.txt', filedata: Buffer.from('web').toString('base64') })).ok,
    true,
  );
  assert.equal(readFileSync(join(t.dataDir, 'www/docs/a.txt'), 'utf8'), 'web');
  const got = await call('pgetfile', { filename: 'docs/a.txt' });
  assert.equal(Buffer.from(got.text, 'base64').toString(), 'web');
  assert.equal((await call('pgetfile', { filename: 'voxswitch.conf' })).ok, false, 'the web folder has no config');
});

test('traversal, absolute paths, drives, NUL and empty segments are refused; nothing escapes', async () => {
  const tricks = [
    '../secret.txt',
    'a/../../secret.txt',
    '/etc/passwd',
    'C:\\Windows\\win.ini',
    'C:/x',
    '..\\x',
    'x\u0000y',
    'a//b',
    './x',
    'dir/',
    `${'../'.repeat(8)}etc/passwd`,
  ];
  for (const name of tricks) {
    for (const entry of ['getfile', 'putfile', 'pgetfile', 'pputfile']) {
      const r = await call(entry, { filename: name, filedata: 'QUJD' });
      assert.equal(r.ok, false, `${entry} ${JSON.stringify(name)}: ${r.body}`);
      assert.match(r.text, /filename|not served|outside/, r.text);
      assert.doesNotMatch(r.body, /root:|outside-secret/);
    }
  }
  // a name with %2e%2e is a literal name inside the folder, never a way out
  const lit = await call('putfile', { filename: '%2e%2e/x.txt', filedata: 'QUJD' });
  assert.equal(lit.ok, true, lit.body);
  assert.ok(existsSync(join(t.dataDir, '%2e%2e', 'x.txt')));
  assert.ok(!existsSync(join(t.dataDir, '..', 'x.txt')));
});

test('a symlink leading out is not followed, for reading or writing', async () => {
  symlinkSync(join(outside, 'secret.txt'), join(t.dataDir, 'link.txt'));
  mkdirSync(join(t.dataDir, 'www'), { recursive: true });
  symlinkSync(outside, join(t.dataDir, 'www', 'out'));
  const r1 = await call('getfile', { filename: 'link.txt' });
  assert.equal(r1.ok, false);
  assert.doesNotMatch(r1.body, /outside-secret/);
  const r2 = await call('pgetfile', { filename: 'out/secret.txt' });
  assert.equal(r2.ok, false);
  assert.match(r2.text, /outside the folder/);
  const r3 = await call('pputfile', { filename: 'out/new.txt', filedata: 'QUJD' });
  assert.equal(r3.ok, false);
  assert.ok(!existsSync(join(outside, 'new.txt')), 'nothing written outside');
  assert.equal((await call('putfile', { filename: 'link.txt', filedata: 'QUJD' })).ok, false);
  assert.equal(readFileSync(join(outside, 'secret.txt'), 'utf8'), 'outside-secret');
});

test('the key, the config, the database, TLS and backups are never served nor overwritten', async () => {
  const key = readFileSync(join(t.dataDir, 'server.key'), 'utf8');
  for (const name of [
    'server.key',
    'voxswitch.conf',
    'voxswitch.db',
    'voxswitch.db-wal',
    'tls/key.pem',
    'backups/x',
    'Server.Key',
  ]) {
    const g = await call('getfile', { filename: name });
    assert.equal(g.ok, false, `${name}: ${g.body}`);
    assert.match(g.text, /not served/);
    const p = await call('putfile', { filename: name, filedata: 'QUJD' });
    assert.equal(p.ok, false, name);
  }
  assert.equal(readFileSync(join(t.dataDir, 'server.key'), 'utf8'), key);
  assert.doesNotMatch((await call('getfile', { filename: 'server.key' })).body, new RegExp(key.trim().slice(0, 16)));
});

test('size limits, bad base64 and missing files answer a clear ERROR', async () => {
  const big = Buffer.alloc(70_000, 1).toString('base64');
  const r = await call('putfile', { filename: 'big.bin', filedata: big });
  assert.equal(r.ok, false);
  assert.match(r.text, /larger than filemaxsize \(65536\)/);
  assert.ok(!existsSync(join(t.dataDir, 'big.bin')));
  writeFileSync(join(t.dataDir, 'huge.log'), Buffer.alloc(70_000));
  assert.match((await call('getfile', { filename: 'huge.log' })).text, /larger than filemaxsize/);
  assert.match((await call('putfile', { filename: 'x.txt', filedata: 'not*base64!' })).text, /not base64/);
  assert.match((await call('getfile', { filename: 'nosuch.txt' })).text, /no file nosuch\.txt/);
  assert.match((await call('getfile', { filename: '' })).text, /filename: name a file/);
});
