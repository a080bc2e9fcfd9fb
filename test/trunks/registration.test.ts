/**
 * Trunk registration end to end on a real server (usesip, the composition root's TrunkRegistrar): sipp plays the
 * trunk's registrar. Digest (401 then a verified answer), the granted 4 s expiry refreshed in time, `gateways`
 * showing the state, delgateway sending Expires: 0; a registrar answering 503 → failed with the cause, then retried;
 * a registrar that does not answer → failed (timeout) and retried; an INVITE from the trunk to its Contact user
 * reaching the user whose DID is in To.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { startListening, runTool, type Listening } from '../helpers/processes.js';
import { skipWithout, toolPath } from '../helpers/tools.js';
import { freePort } from '../helpers/ports.js';
import { SCEN as CALL_SCEN, waitFor } from '../calls/helpers.js';
import type { Services } from '../../src/services.js';
import type { ApiResult } from '../../src/api/types.js';
import { TrunkRegistrar, type TrunkState } from '../../src/sip/trunks/registrar.js';
import { MemoryHash } from '../../src/state/kv.js';

const SCEN = resolve(process.cwd(), 'test/trunks/scenarios');
const SIPP = toolPath('sipp');
const LOCAL = apiSrc('127.0.0.1');
let t: TestServer;
let s: Services;
let work: string;
let sipPort = 0;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-trunks-'));
  t = await startTestServer({ authfailban: '0', trunkretry: '1', trunkretrymax: '2' });
  s = t.srv.services;
  sipPort = s.listeners.find((l) => l.kind === 'sip udp')!.port;
});
after(async () => {
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

const api = (cmd: string, p: Record<string, string> = {}): Promise<ApiResult> =>
  t.srv.gateway.handle(apiReq(cmd, p, LOCAL));

function registrar(scenario: string, port?: number, scen = SCEN): Promise<Listening> {
  return startListening(
    SIPP,
    (p) => [
      '-sf',
      join(scen, scenario),
      '-i',
      '127.0.0.1',
      '-p',
      String(p),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '30s',
      '-timeout_error',
      '-t',
      'u1',
      '-trace_err',
      '-error_file',
      join(work, `${scenario}-${p}.err`),
    ],
    { cwd: work, proto: 'udp', port },
  );
}

async function state(name: string): Promise<Record<string, string | number> | undefined> {
  const r = await api('gateways');
  assert.ok(r.ok, r.text);
  return r.rows?.find((row) => row.name === name) as Record<string, string | number> | undefined;
}

test('digest registration: 401 answered, 4 s expiry refreshed twice, shown by gateways, Expires: 0 on delgateway', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const reg = await registrar('registrar_digest.xml');
  const r = await api('addgateway', {
    name: 'trunk1',
    host: '127.0.0.1',
    port: String(reg.port),
    username: 'trunkuser',
    password: 'trunksecret',
    register: '1',
    register_expires: '60',
    register_contact: 'trunkin',
  });
  assert.ok(r.ok, r.text);
  const first = await waitFor(
    () => state('trunk1'),
    (row) => row?.reg_status === 'registered',
  );
  assert.equal(first?.reg_status, 'registered', JSON.stringify(first));
  assert.equal(first?.reg_expires, 4, 'the expiry the registrar granted (Contact expires=4)');
  assert.equal(first?.reg_registrar, `udp:127.0.0.1:${reg.port}`);
  assert.equal(first?.password, 'set');
  // two refreshes before the 4 s run out (at 80 %): reg_at moves on
  const at1 = String(first!.reg_at);
  const later = await waitFor(
    () => state('trunk1'),
    (row) => String(row?.reg_at) > at1,
    6000,
  );
  assert.ok(String(later?.reg_at) > at1, 'refreshed');
  assert.equal(later?.reg_status, 'registered');
  const gap = Date.parse(String(later!.reg_at)) - Date.parse(at1);
  assert.ok(gap >= 2500 && gap <= 4000, `refreshed after ${gap} ms (80 % of 4 s)`);
  await waitFor(
    () => state('trunk1'),
    (row) => String(row?.reg_at) > String(later!.reg_at),
    6000,
  );
  const d = await api('delgateway', { name: 'trunk1' });
  assert.ok(d.ok, d.text);
  const done = await reg.done;
  assert.equal(done.code, 0, 'the registrar saw REGISTER with Expires: 0 last: ' + done.out.slice(-1500));
});

test('registrar answering 503: failed with the cause, retried after the back-off, then registered', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const reg = await registrar('registrar_503.xml');
  const r = await api('addgateway', {
    name: 'trunk503',
    host: '127.0.0.1',
    port: String(reg.port),
    register: '1',
    register_user: 'acct503',
    prefix: '99',
  });
  assert.ok(r.ok, r.text);
  const failed = await waitFor(
    () => state('trunk503'),
    (row) => row?.reg_status === 'failed',
  );
  assert.equal(failed?.reg_status, 'failed');
  assert.match(String(failed?.reg_cause), /503 Service Unavailable/);
  assert.ok(String(failed?.reg_next) > new Date().toISOString().slice(0, 19), 'a next try is planned');
  const ok = await waitFor(
    () => state('trunk503'),
    (row) => row?.reg_status === 'registered',
    5000,
  );
  assert.equal(ok?.reg_status, 'registered');
  assert.equal(ok?.reg_expires, 60);
  assert.equal(ok?.reg_cause, '');
  assert.ok((await api('delgateway', { name: 'trunk503' })).ok);
  assert.equal((await reg.done).code, 0);
});

test('a registrar that does not answer: failed (timeout) and tried again, with growing failures', async () => {
  const port = await freePort(); // nothing listens there
  const seen: TrunkState[] = [];
  const leases = new MemoryHash();
  const reg = new TrunkRegistrar(
    {
      trunks: async () => [
        {
          id: 9001,
          name: 'dead',
          host: '127.0.0.1',
          port,
          transport: 'udp',
          dns: '',
          aor: 'acct',
          authUser: 'acct',
          password: '',
          realm: '',
          contact: 'acct',
          expires: 60,
        },
      ],
      trust: () => undefined,
      stack: s.sip!.stack,
      resolver: s.sip!.resolver,
      log: { info: () => undefined, warn: (o) => seen.push(o as TrunkState), debug: () => undefined },
      leases,
      owner: 'test/0',
    },
    { tickMs: 60_000, answerMs: 300, retryMinMs: 100, retryMaxMs: 200 },
  );
  await reg.start();
  const st = await waitFor(
    () => reg.states(),
    (l) => (l[0]?.failures ?? 0) >= 3,
    5000,
  );
  await reg.stop();
  assert.equal(st[0]?.status, 'failed');
  assert.match(st[0]!.cause, /no answer \(timeout\)/);
  assert.ok(st[0]!.failures >= 3, `retried (${st[0]!.failures} failures)`);
  assert.equal(st[0]!.owner, 'test/0');
  // the lease is released on stop
  assert.equal((await leases.read('gw:9001')).fields.size, 0);
});

test('lease: a second process does not register a trunk the first holds, and shows its state', async () => {
  const leases = new MemoryHash();
  const cfg = {
    id: 9002,
    name: 'leased',
    host: '127.0.0.1',
    port: await freePort(),
    transport: 'udp' as const,
    dns: '' as const,
    aor: 'a',
    authUser: 'a',
    password: '',
    realm: '',
    contact: 'a',
    expires: 60,
  };
  const mk = (owner: string) =>
    new TrunkRegistrar(
      {
        trunks: async () => [cfg],
        trust: () => undefined,
        stack: s.sip!.stack,
        resolver: s.sip!.resolver,
        log: { info: () => undefined, warn: () => undefined, debug: () => undefined },
        leases,
        owner,
      },
      { tickMs: 60_000, answerMs: 200, retryMinMs: 5000, retryMaxMs: 5000 },
    );
  const one = mk('node1/1');
  const two = mk('node1/2');
  await one.start();
  await two.start();
  const st = await waitFor(
    () => two.states(),
    (l) => l[0]?.status === 'failed',
    3000,
  );
  assert.equal(st[0]?.owner, 'node1/1', 'the state of the holder, seen from the other process');
  assert.equal(st[0]?.status, 'failed');
  await one.stop();
  await two.sync(); // the lease is free: the second takes it over
  assert.equal((await two.states())[0]?.owner, 'node1/2');
  await two.stop();
});

test('an INVITE from the trunk to its Contact user reaches the user whose DID is in To', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const reg = await registrar('registrar_503.xml');
  assert.ok(
    (
      await api('addgateway', {
        name: 'trunkin',
        host: '127.0.0.1',
        port: String(reg.port),
        register: '1',
        register_user: 'acctin',
        register_contact: 'in8841',
        prefix: '98',
      })
    ).ok,
  );
  await waitFor(
    () => state('trunkin'),
    (row) => row?.reg_status === 'registered',
    6000,
  );
  const jack = await s.users.create({ username: 'jack', password: 'jackpw12' });
  await s.storage.db.updateTable('tb_users').set({ did: '4930777' }).where('id', '=', jack.id).execute();
  s.users.clearCache();
  const phone = await startListening(
    SIPP,
    (p) => [
      '-sf',
      join(CALL_SCEN, 'uas_answer.xml'),
      '-i',
      '127.0.0.1',
      '-p',
      String(p),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
      '-t',
      'u1',
    ],
    { cwd: work },
  );
  const bound = s.sip!.location.update('jack', 'reg-jack', 1, [
    {
      contact: `sip:jack@127.0.0.1:${phone.port}`,
      expires: 300,
      transport: 'udp',
      srcIp: '127.0.0.1',
      srcPort: phone.port,
      userAgent: 'sipp',
      q: 1,
    },
  ]);
  assert.ok(bound.ok);
  const inf = join(work, 'in.csv');
  writeFileSync(inf, 'SEQUENTIAL\n4915550001;x;in8841;4930777\n');
  const a = await runTool(
    SIPP,
    [
      `127.0.0.1:${sipPort}`,
      '-sf',
      join(SCEN, 'uac_trunk_in.xml'),
      '-inf',
      inf,
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
      '-t',
      'u1',
      '-d',
      '500',
    ],
    work,
  );
  const b = await phone.done;
  assert.equal(a.code, 0, 'the trunk calling in: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'jack: ' + b.out.slice(-1500));
  const cdr = await waitFor(
    () => s.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', jack.id).executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.equal(cdr?.caller, '4915550001');
  assert.equal(cdr?.callee, 'jack', 'the DID in To reached jack');
  assert.equal(Number(cdr?.cost), 0);
  assert.ok((await api('delgateway', { name: 'trunkin' })).ok);
  assert.equal((await reg.done).code, 0);
});
