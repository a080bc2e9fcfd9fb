/**
 * /metrics and /health on the API port, read with curl: the counters move after API requests, a sipsak REGISTER
 * and a sipp call; the text is Prometheus exposition; /health turns 503 when the database is gone. A second part
 * reads them from a network namespace (a non-loopback address): refused unless metricsallow lists it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { curl } from '../helpers/clients.js';
import { skipWithout, toolPath } from '../helpers/tools.js';
import { caller, LOCAL } from '../users/helpers.js';
import { makeNetnsHost, netnsMissing } from '../helpers/netns.js';
import { registerAt, uac, uacCsv, uas, waitFor, type CallEnv } from '../calls/helpers.js';

const run = promisify(execFile);
let t: TestServer;
let work: string;

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp);
    if (key === name + labels) return Number(line.slice(sp + 1));
  }
  return undefined;
}

async function scrape(): Promise<string> {
  const r = await curl([t.url('/metrics')]);
  assert.equal(r.status, 200, r.body.slice(0, 300));
  assert.match(r.headers, /content-type: text\/plain; version=0\.0\.4/i);
  return r.body;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'vx-metrics-'));
  t = await startTestServer({ apilimitip: '0', authfailban: '0' });
  const { call } = caller(t);
  for (const u of ['alice', 'bob']) {
    const r = await call('newuseri', { u_username: u, u_password: `${u}pw-Metrics1` }, LOCAL);
    assert.equal(r.ok, true, r.text);
  }
});
after(async () => {
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the exposition is well formed: HELP and TYPE for each family, numeric samples, default process metrics', async () => {
  const text = await scrape();
  const families = new Set<string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        assert.match(m[3]!, /^(counter|gauge|histogram|summary|untyped)$/);
        families.add(m[2]!);
      }
      continue;
    }
    // values as Go's ParseFloat reads them (prom-client writes NaN as "Nan")
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|[+-]?Inf|nan)$/i, line);
  }
  for (const f of [
    'voxswitch_api_requests_total',
    'voxswitch_api_request_seconds',
    'voxswitch_registrations',
    'voxswitch_live_calls',
    'voxswitch_calls_ended_total',
    'voxswitch_cdrs_total',
    'voxswitch_bans',
    'voxswitch_queue_depth',
    'voxswitch_process_nodejs_eventloop_lag_seconds',
  ])
    assert.ok(families.has(f), `family ${f}`);
  assert.equal(sample(text, 'voxswitch_queue_depth', '{queue="sms"}'), 0);
});

test('API requests are counted by command and outcome, with a latency histogram', async () => {
  const before = await scrape();
  const ok0 = sample(before, 'voxswitch_api_requests_total', '{command="version",status="ok"}') ?? 0;
  for (let i = 0; i < 3; i++) {
    const r = await curl([t.url(`/mvapireq/?apientry=version&authkey=${API_KEY}`)]);
    assert.match(r.body, /OK$/);
  }
  await curl([t.url(`/mvapireq/?apientry=nosuchcommand&authkey=${API_KEY}`)]);
  const text = await scrape();
  assert.equal(sample(text, 'voxswitch_api_requests_total', '{command="version",status="ok"}'), ok0 + 3);
  assert.ok((sample(text, 'voxswitch_api_requests_total', '{command="unknown",status="error"}') ?? 0) >= 1);
  assert.ok((sample(text, 'voxswitch_api_request_seconds_count', '{command="version"}') ?? 0) >= ok0 + 3);
});

test('a sipsak REGISTER and a sipp call move registrations, call and CDR counters', async (c) => {
  if (skipWithout(c, 'sipsak', 'sipp')) return;
  const sip = t.srv.services.sip!;
  const port = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const r = await run(
    toolPath('sipsak'),
    [
      '-U',
      '-x',
      '120',
      '-s',
      'sip:alice@127.0.0.1',
      '-r',
      String(port),
      '-u',
      'alice',
      '-a',
      'alicepw-Metrics1',
      '-vv',
    ],
    { timeout: 10_000 },
  ).catch((e: { stdout?: string }) => e);
  assert.match(String(r.stdout), /All usrloc tests completed successful/, JSON.stringify(r).slice(0, 800));
  let text = await scrape();
  assert.ok((sample(text, 'voxswitch_registrations') ?? 0) >= 1, 'alice registered');
  const cdrs0 = sample(text, 'voxswitch_cdrs_total') ?? 0;
  const answered0 = sample(text, 'voxswitch_calls_ended_total', '{outcome="answered",cause="normal"}') ?? 0;

  const env = { udpPort: port, sip } as unknown as CallEnv;
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'bob', callee.port);
  const csv = uacCsv(work, 'm.csv', [['alice', 'alicepw-Metrics1', 'bob']]);
  const call = uac(env, work, 'uac_auth.xml', csv, 1, ['-d', '1500']);
  const live = await waitFor(scrape, (s) => (sample(s, 'voxswitch_live_calls') ?? 0) >= 1);
  assert.ok((sample(live, 'voxswitch_live_calls') ?? 0) >= 1, 'the call is live while it lasts');
  const [a, b] = await Promise.all([call, callee.done]);
  assert.equal(a.code, 0, a.out.slice(-800));
  assert.equal(b.code, 0, b.out.slice(-800));
  text = await waitFor(scrape, (s) => (sample(s, 'voxswitch_cdrs_total') ?? 0) > cdrs0);
  assert.equal(sample(text, 'voxswitch_cdrs_total'), cdrs0 + 1, 'one CDR');
  assert.equal(sample(text, 'voxswitch_calls_ended_total', '{outcome="answered",cause="normal"}'), answered0 + 1);
  assert.ok((sample(text, 'voxswitch_call_attempts') ?? 0) >= 1);
  assert.equal(sample(text, 'voxswitch_live_calls'), 0);
});

test('/health answers 200 with JSON, HEAD too; other methods 405', async () => {
  const r = await curl([t.url('/health')]);
  assert.equal(r.status, 200);
  const h = JSON.parse(r.body) as { ok: boolean; status: string; storage: string; draining: boolean };
  assert.deepEqual([h.ok, h.status, h.storage, h.draining], [true, 'ok', 'ok', false]);
  const head = await curl(['-I', t.url('/health')]);
  assert.equal(head.status, 200);
  const post = await curl(['-X', 'POST', t.url('/metrics')]);
  assert.equal(post.status, 405);
});

test('/health is 503 once the database does not answer', async () => {
  const t2 = await startTestServer();
  try {
    assert.equal((await curl([t2.url('/health')])).status, 200);
    await t2.srv.services.storage.db.destroy();
    const r = await curl([t2.url('/health')]);
    assert.equal(r.status, 503, r.body);
    assert.equal((JSON.parse(r.body) as { status: string }).status, 'storage unavailable');
  } finally {
    await t2.stop().catch(() => undefined);
  }
});

// --- from another address: a network namespace joined by a veth pair ---
const nsMissing = netnsMissing(['curl']);
if (nsMissing && process.env.CI === 'true') throw new Error(`the metrics netns test cannot run in CI: ${nsMissing}`);

test(
  'from a non-loopback address /metrics and /health are 403 until metricsallow lists it',
  { skip: nsMissing || false, timeout: 60_000 },
  async () => {
    const ns = await makeNetnsHost('met', 201);
    let t3: TestServer | undefined;
    try {
      t3 = await startTestServer({ apibindaddr: ns.host, sipbindaddr: ns.host });
      const url = (path: string) => `http://${ns.host}:${t3!.port}${path}`;
      const from = async (path: string) =>
        (await ns.exec('curl', ['-s', '-m', '5', '-w', '\n%{http_code}', url(path)], 10_000)).stdout;
      for (const path of ['/metrics', '/health']) {
        const out = await from(path);
        assert.match(out, /\n403$/, out);
        assert.match(out, /metricsallow/);
        assert.doesNotMatch(out, /voxswitch_/);
      }
      // the operator's way: the option in the config file, then the reload command
      const { appendFileSync } = await import('node:fs');
      appendFileSync(t3.srv.services.config.file, `metricsallow=${ns.peer}/32\n`);
      const reloaded = await caller(t3).call('reload', {}, LOCAL);
      assert.equal(reloaded.ok, true, reloaded.text);
      assert.match(await from('/metrics'), /voxswitch_api_requests_total[\s\S]*\n200$/);
      assert.match(await from('/health'), /"status":"ok"[\s\S]*\n200$/);
    } finally {
      await t3?.stop().catch(() => undefined);
      await ns.remove();
    }
  },
);
