/**
 * Log areas: a server in a temp data dir writes main/sip/tcp/cdr; showlog reads real lines after an HTTP API call
 * and after a sipsak REGISTER; no password or authmd5 in any log; size rotation keeps every line; setloglevel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server.js';
import { LogAreas } from '../../src/ops/logs/index.js';
import { ADMIN_PASSWORD, API_KEY, TEST_OVERRIDES, authMd5, freshSalt } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { skipWithout, toolPath } from '../helpers/tools.js';

const run = promisify(execFile);
const USER_PW = 'Al1ce-Very-Secret';
let dir: string;
let srv: RunningServer;
let port: number;

const api = (entry: string, params: Record<string, string> = {}) =>
  srv.gateway.handle(req(entry, params, src('127.0.0.1')));

async function until<T>(f: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function showlog(log: string, lines = '200'): Promise<string[]> {
  const r = await api('showlog', { log, lines });
  assert.ok(r.ok, r.text);
  return (r.rows ?? []).map((x) => String(x.line));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'voxswitch-logs-'));
  process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
  srv = await startServer({
    dataDir: dir,
    overrides: { ...TEST_OVERRIDES, apilimitip: '0', loglevels: 'tcp=info' },
    announce: () => undefined,
  });
  port = srv.services.listeners[0]!.port;
  assert.ok((await api('newuseri', { u_username: 'alice', u_password: USER_PW })).ok);
});

after(async () => {
  await srv.stop();
  const main = readFileSync(join(dir, 'logs', 'main.log'), 'utf8');
  assert.match(main.trim().split('\n').at(-1)!, /"msg":"voxswitch stopped"/);
  for (const f of readdirSync(join(dir, 'logs'))) {
    const text = readFileSync(join(dir, 'logs', f), 'utf8');
    for (const secret of [ADMIN_PASSWORD, USER_PW, API_KEY]) assert.ok(!text.includes(secret), `${secret} in ${f}`);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the start is in main; an HTTP API call gives one tcp access line without its password or authmd5', async () => {
  await until(async () => (await showlog('main')).some((l) => l.includes('"msg":"voxswitch started"')) || undefined);
  const salt = freshSalt();
  const md5 = authMd5('alice', USER_PW, salt);
  const url = `http://127.0.0.1:${port}/mvapireq/?apientry=balance&authid=alice&authmd5=${md5}&authsalt=${salt}`;
  const res = await fetch(url);
  assert.match(await res.text(), /OK|[\d.]/);
  const bad = await fetch(`http://127.0.0.1:${port}/mvapireq/?apientry=balance&authid=alice&authpwd=${USER_PW}x`);
  assert.match(await bad.text(), /ERROR/);
  const lines = await until(async () => {
    const l = (await showlog('tcp')).filter((x) => x.includes('"cmd":"balance"') && x.includes('"transport":"http"'));
    return l.length >= 2 ? l : undefined;
  });
  const ok = JSON.parse(lines.at(-2)!) as Record<string, unknown>;
  assert.equal(ok.status, 'OK');
  assert.equal(ok.area, 'tcp');
  assert.match(String(ok.src), /^127\.0\.0\.1:\d+$/);
  assert.equal(typeof ok.ms, 'number');
  assert.equal(JSON.parse(lines.at(-1)!).status, 'ERROR');
  for (const l of lines) assert.ok(!l.includes(md5) && !l.includes(USER_PW), l);
  // the failed login is in main, with the name and never the password
  const failed = await until(async () => (await showlog('main')).find((l) => l.includes('API login failed')));
  assert.match(failed, /"user":"alice"/);
  assert.ok(!failed.includes(USER_PW));
});

test('a sipsak REGISTER is in the sip log', async (c) => {
  if (skipWithout(c, 'sipsak')) return;
  const sipPort = srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const r = await run(
    toolPath('sipsak'),
    ['-U', '-x', '120', '-s', 'sip:alice@127.0.0.1', '-r', String(sipPort), '-u', 'alice', '-a', USER_PW, '-vv'],
    { timeout: 10000 },
  ).catch((e: { stdout?: string }) => e);
  assert.match(String(r.stdout), /All usrloc tests completed successful/);
  const line = await until(async () =>
    (await showlog('sip')).find((l) => l.includes('"msg":"registered"') && l.includes('"user":"alice"')),
  );
  assert.match(line, /"src":"udp:127\.0\.0\.1:\d+"/);
  assert.ok(!line.includes(USER_PW));
});

test('a CDR gives one line in the cdr log', async () => {
  const alice = await srv.services.users.byUsername('alice');
  const t0 = Date.now() - 60_000;
  const rec = { callid: 'log-cdr-1', userId: alice!.id, caller: 'alice', callee: '3612345678', startAt: t0 };
  await srv.services.cdrs.recordCall({ ...rec, connectAt: t0 + 500, endAt: t0 + 30_500, duration: 30 });
  const line = await until(async () => (await showlog('cdr')).find((l) => l.includes('"callid":"log-cdr-1"')));
  assert.match(line, /"duration":30/);
  assert.match(line, /"msg":"cdr"/);
});

test('setloglevel takes effect: tcp at warn writes no access line, back at info it does', async () => {
  assert.equal((await api('setloglevel', { log: 'tcp', level: 'warn' })).text, 'tcp log level warn (was info)');
  await api('version');
  await new Promise((r) => setTimeout(r, 300));
  const before = (await showlog('tcp')).filter((l) => l.includes('"cmd":"version"')).length;
  await api('version');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await showlog('tcp')).filter((l) => l.includes('"cmd":"version"')).length, before);
  assert.ok((await api('setloglevel', { log: 'tcp', level: 'info' })).ok);
  await api('version');
  await until(async () => {
    const n = (await showlog('tcp')).filter((l) => l.includes('"cmd":"version"')).length;
    return n > before ? n : undefined;
  });
  assert.ok((await showlog('main')).some((l) => l.includes('log level changed')));
});

test('bad names, levels and line counts answer an ERROR', async () => {
  assert.match((await api('showlog', { log: 'gk' })).text, /no gatekeeper/);
  assert.match((await api('showlog', { log: 'sh' })).text, /no separate SIP handler/);
  assert.match((await api('showlog', { log: '../server.key' })).text, /unknown log/);
  assert.match((await api('showlog', { log: 'main', lines: '10001' })).text, /lines: a whole number/);
  assert.match((await api('showlog', { log: 'main', lines: '-3' })).text, /lines: a whole number/);
  assert.match((await api('showlog', { log: '' })).text, /name a log/);
  assert.match((await api('setloglevel', { log: 'sip', level: 'loud' })).text, /level: one of/);
  assert.match((await api('setloglevel', { log: 'nope', level: 'info' })).text, /unknown log/);
  const r = await api('showlog', { log: 'main', lines: '3' });
  assert.equal(r.rows?.length, 3);
});

test('rotation by size really rotates and loses no line', async () => {
  const d = mkdtempSync(join(tmpdir(), 'voxswitch-rotate-'));
  try {
    const logs = new LogAreas({ dir: d, level: 'info', maxSizeMb: 1, maxFiles: 20, interval: '', console: null });
    const log = logs.get('sip');
    const N = 40_000;
    for (let i = 0; i < N; i++) log.info({ i, pad: 'x'.repeat(40) }, 'line');
    await logs.close();
    const files = readdirSync(d).filter((f) => f.startsWith('sip.log'));
    assert.ok(files.length >= 3, files.join(','));
    const seen = new Set<number>();
    for (const f of files)
      for (const l of readFileSync(join(d, f), 'utf8').split('\n')) if (l) seen.add((JSON.parse(l) as { i: number }).i);
    assert.equal(seen.size, N);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
