/**
 * The B2BUA with the real RoutingService (the server's services.routing): a gateway added by `addgateway`, with digest
 * auth towards it; a DID call in from the gateway's inbound_ip (no auth) to a registered user.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { B2bua } from '../../src/sip/calls/index.js';
import { uas, runTool, SIPP, SCEN, uacCsv, freePort, setRates, waitFor } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';
import { startListening } from '../helpers/processes.js';
import type { Services } from '../../src/services.js';

const LOCAL = apiSrc('127.0.0.1');
let t: TestServer;
let s: Services;
let sip: SipServer;
let calls: B2bua;
let udpPort = 0;
let work: string;
let ivy: number;
let jack: number;
let gwPort = 0;
let wrongPort = 0;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-callsri-'));
  t = await startTestServer({ usesip: 'false', authfailban: '0' });
  s = t.srv.services;
  const o = s.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
  });
  sip = new SipServer(s, stack);
  udpPort = (await sip.start()).find((x) => x.transport === 'udp')!.port;
  (s as { sip?: SipServer }).sip = sip;
  calls = new B2bua({ services: s, sip, router: s.routing, live: s.liveCalls });
  calls.start();
  ivy = (await s.users.create({ username: 'ivy', password: 'ivypw12' })).id;
  jack = (await s.users.create({ username: 'jack', password: 'jackpw1' })).id;
  await s.storage.db.updateTable('tb_users').set({ did: '4930777' }).where('id', '=', jack).execute();
  s.users.clearCache();
  const cur = (await s.ledger.balance(ivy))!.currency;
  await setRates(s, cur, [
    { prefix: '49', price: 1_200_000 },
    { prefix: '48', price: 1_200_000 },
  ]);
  await s.ledger.post({ userId: ivy, amount: 10_000_000, reason: 'test' });
  gwPort = await freePort();
  const r = await t.srv.gateway.handle(
    apiReq(
      'addgateway',
      {
        name: 'gwauth',
        host: '127.0.0.1',
        port: String(gwPort),
        transport: 'udp',
        username: 'gwuser',
        password: 'gwsecret',
        prefix: '49',
        priority: '1',
        weight: '1',
        inbound_ip: '127.0.0.2',
      },
      LOCAL,
    ),
  );
  assert.ok(r.ok, `addgateway: ${r.text}`);
  wrongPort = await freePort();
  const r2 = await t.srv.gateway.handle(
    apiReq(
      'addgateway',
      {
        name: 'gwwrong',
        host: '127.0.0.1',
        port: String(wrongPort),
        transport: 'udp',
        username: 'gwuser',
        password: 'not-the-secret',
        prefix: '48',
        priority: '1',
      },
      LOCAL,
    ),
  );
  assert.ok(r2.ok, `addgateway: ${r2.text}`);
});
after(async () => {
  await calls?.stop();
  await sip?.stop();
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('recover() at start closes nothing on a clean database', async () => {
  assert.deepEqual(await calls.recover(), { closed: 0, charged: 0 });
});

test('real routing: ivy → 4912345 goes to the gateway added by addgateway, which challenges (401) and gets a valid digest', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const gw = await uas(work, 'uas_auth.xml', [], gwPort);
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_auth.xml'),
      '-inf',
      uacCsv(work, 'ri.csv', [['ivy', 'ivypw12', '4912345']]),
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
      '1000',
    ],
    work,
  );
  const g = await gw.done;
  assert.equal(a.code, 0, 'caller: ' + a.out.slice(-1500));
  assert.equal(g.code, 0, 'gateway (verifies the digest): ' + g.out.slice(-1500));
  const cdr = await waitFor(
    () =>
      s.storage.db
        .selectFrom('tb_cdrs')
        .selectAll()
        .where('userid', '=', ivy)
        .where('callee', '=', '4912345')
        .executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.ok(cdr);
  assert.equal(cdr!.route, 'gw:gwauth');
  assert.ok(cdr!.duration >= 1);
  assert.equal(Number(cdr!.cost), Math.ceil((1_200_000 * cdr!.duration) / 60));
});

test("DID inbound: a call from the gateway's inbound_ip (no auth) to jack's DID reaches jack's phone; recorded free on jack", async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_answer.xml');
  const phone = callee.port;
  const r = sip.location.update('jack', 'reg-jack', 1, [
    {
      contact: `sip:jack@127.0.0.1:${phone}`,
      expires: 300,
      transport: 'udp',
      srcIp: '127.0.0.1',
      srcPort: phone,
      userAgent: 'sipp',
      q: 1,
    },
  ]);
  assert.ok(r.ok);
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_plain.xml'),
      '-inf',
      uacCsv(work, 'did.csv', [['4915550001', 'x', '4930777']]),
      '-m',
      '1',
      '-i',
      '127.0.0.2',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
      '-t',
      'u1',
      '-d',
      '1000',
    ],
    work,
  );
  const b = await callee.done;
  assert.equal(a.code, 0, 'gateway caller: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'jack: ' + b.out.slice(-1500));
  const cdr = await waitFor(
    () => s.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', jack).executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.ok(cdr, 'a CDR on jack');
  assert.equal(cdr!.caller, '4915550001');
  assert.equal(Number(cdr!.cost), 0);
});

test('DID inbound to an unknown number: refused 404, and the refusal is in tb_cdrs (no account charged)', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_plain.xml'),
      '-inf',
      uacCsv(work, 'did404.csv', [['4915550002', 'x', '4930999']]),
      '-m',
      '1',
      '-i',
      '127.0.0.2',
      '-nostdin',
      '-timeout',
      '10s',
      '-timeout_error',
      '-t',
      'u1',
    ],
    work,
  );
  assert.notEqual(a.code, 0);
  assert.match(a.out, /404/);
  const cdr = await waitFor(
    () => s.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', '4930999').executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.ok(cdr, 'a CDR for the refused call');
  assert.equal(cdr!.userid, 0);
  assert.equal(Number(cdr!.cost), 0);
  assert.match(cdr!.reason, /^404 /);
});

test('the same call from an untrusted address without credentials is challenged (407), not connected', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_plain.xml'),
      '-inf',
      uacCsv(work, 'did2.csv', [['4915550001', 'x', '4930777']]),
      '-m',
      '1',
      '-i',
      '127.0.0.3',
      '-nostdin',
      '-timeout',
      '10s',
      '-timeout_error',
      '-t',
      'u1',
    ],
    work,
  );
  assert.notEqual(a.code, 0);
  assert.match(a.out, /407/);
});

test('negative control: with the wrong gateway password the gateway (sipp verifyauth) rejects the digest and no call connects', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const gw = await startListening(
    SIPP,
    (port) => [
      '-sf',
      join(SCEN, 'uas_auth.xml'),
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '8s',
      '-timeout_error',
      '-t',
      'u1',
    ],
    { cwd: work, port: wrongPort },
  );
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_auth.xml'),
      '-inf',
      uacCsv(work, 'wrong.csv', [['ivy', 'ivypw12', '4812345']]),
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '8s',
      '-timeout_error',
      '-t',
      'u1',
      '-d',
      '500',
    ],
    work,
  );
  const g = await gw.done;
  assert.notEqual(g.code, 0, 'the gateway refused the digest');
  assert.notEqual(a.code, 0, 'the caller was not connected');
  const cdr = await s.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', '4812345').executeTakeFirst();
  assert.equal(cdr ? Number(cdr.cost) : 0, 0, 'nothing charged');
});

test("pin-less: a call from the gateway's inbound_ip whose caller number is ivy's CLI is placed and billed as ivy", async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await s.numbers.addCli(ivy, '4915550003');
  const before = (await s.ledger.balance(ivy))!.credit;
  const gw = await uas(work, 'uas_auth.xml', [], gwPort);
  const a = await runTool(
    SIPP,
    [
      '127.0.0.1:' + udpPort,
      '-sf',
      join(SCEN, 'uac_plain.xml'),
      '-inf',
      uacCsv(work, 'pinless.csv', [['4915550003', 'x', '4912399']]),
      '-m',
      '1',
      '-i',
      '127.0.0.2',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
      '-t',
      'u1',
      '-d',
      '1000',
    ],
    work,
  );
  const g = await gw.done;
  assert.equal(a.code, 0, 'caller through the trunk: ' + a.out.slice(-1500));
  assert.equal(g.code, 0, 'outbound gateway: ' + g.out.slice(-1500));
  const cdr = await waitFor(
    () => s.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', '4912399').executeTakeFirst(),
    (r) => r !== undefined,
  );
  assert.equal(cdr!.userid, ivy, 'billed to the account of the CLI');
  assert.equal(cdr!.caller, '4915550003');
  assert.equal(cdr!.route, 'gw:gwauth');
  assert.ok(Number(cdr!.cost) > 0);
  assert.equal((await s.ledger.balance(ivy))!.credit, before - Number(cdr!.cost));
  // the CLI of a disabled account is not pin-less: the call from the trunk may only reach DIDs (404)
  await s.storage.db.updateTable('tb_users').set({ enabled: 0 }).where('id', '=', ivy).execute();
  s.users.clearCache();
  try {
    const refused = await runTool(
      SIPP,
      [
        '127.0.0.1:' + udpPort,
        '-sf',
        join(SCEN, 'uac_plain.xml'),
        '-inf',
        uacCsv(work, 'pinless-off.csv', [['4915550003', 'x', '4912398']]),
        '-m',
        '1',
        '-i',
        '127.0.0.2',
        '-nostdin',
        '-timeout',
        '10s',
        '-timeout_error',
        '-t',
        'u1',
      ],
      work,
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.out, /404/);
  } finally {
    await s.storage.db.updateTable('tb_users').set({ enabled: 1 }).where('id', '=', ivy).execute();
    s.users.clearCache();
  }
});
