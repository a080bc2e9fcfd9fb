/**
 * callback / p2p as the server wires them by default: the instance created on first use from services.sip, the real
 * RoutingService (gateways added with addgateway), LiveCalls shared with disccall. Two sipp UAS as the gateways.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { needTool } from '../helpers/tools.js';
import { freePort } from '../helpers/ports.js';
import type { Listening } from '../helpers/processes.js';
import { uas as sippUas } from './sipp.js';

const NO_SIPP = needTool('sipp');

let t: TestServer;
let work: string;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const ports: number[] = [];

/** A sipp UAS on the gateway's port, resolved once it listens. */
const uas = (scenario: string, port: number): Promise<Listening> => sippUas(work, scenario, port);

before(async () => {
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  work = mkdtempSync(join(tmpdir(), 'voxswitch-3pcc-w-'));
  const h = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
  assert.ok(
    (await h('newuseri', { u_username: 'frank', u_password: 'frankpw', u_credit: '5.00', u_currency: 'USD' })).ok,
  );
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1555,Test,0.60,0,1,1,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  ports.push(await freePort(), await freePort());
  for (const [name, prefix, port] of [
    ['gwa', '155501', ports[0]!],
    ['gwb', '155502', ports[1]!],
  ] as const) {
    const r = await h('addgateway', { name, host: '127.0.0.1', port: String(port), transport: 'udp', prefix });
    assert.ok(r.ok, r.text);
  }
});
after(async () => {
  await t.srv.services.callControl?.stop();
  await t.stop();
  rmSync(work, { recursive: true, force: true });
});

test(
  'p2p through the real routing (addgateway prefixes) and the default wiring; disccall hangs it up; CDR routes',
  { skip: NO_SIPP },
  async () => {
    const a = await uas('a_bridged.xml', ports[0]!);
    const b = await uas('b_bridged.xml', ports[1]!);
    const r = await t.srv.gateway.handle(
      req(
        'p2p',
        { authkey: API_KEY, authid: 'frank', authpwd: 'frankpw', bnum: '+1 555 0101', cnum: '+1 555 0201' },
        REMOTE,
      ),
    );
    assert.equal(r.ok, true, r.text);
    const callid = String(r.fields?.callid);
    const tp = t.srv.services.callControl!;
    assert.ok(tp, 'built by the server');
    const until = Date.now() + 8000;
    while (tp.get(callid)?.state !== 'connected' && Date.now() < until) await new Promise((x) => setTimeout(x, 50));
    assert.equal(tp.get(callid)?.state, 'connected');
    await new Promise((x) => setTimeout(x, 1100));
    assert.deepEqual(
      t.srv.services.liveCalls
        .find(callid)
        .map((c) => c.key)
        .sort(),
      [`${callid}/a`, `${callid}/b`],
    );
    const dc = await t.srv.gateway.handle(req('disccall', { dbcallid: callid }, LOCAL));
    assert.equal(dc.ok, true, dc.text);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, ra.out);
    assert.equal(rb.code, 0, rb.out);
    for (let i = 0; i < 100 && tp.get(callid); i++) await new Promise((x) => setTimeout(x, 50));
    const rows = await t.srv.services.cdrs.byCallId(callid);
    assert.deepEqual(
      rows.map((c) => [c.leg, c.callee, c.route]),
      [
        ['a', '15550101', 'gw:gwa'],
        ['b', '15550201', 'gw:gwb'],
      ],
    );
    assert.ok(rows.every((c) => c.cost > 0 && c.reason === 'disconnected by API (disccall)'));
    // an unserved number: the routing's refusal, verbatim
    const none = await t.srv.gateway.handle(
      req(
        'p2p',
        { authkey: API_KEY, authid: 'frank', authpwd: 'frankpw', bnum: '+15550101', cnum: '+15559999' },
        REMOTE,
      ),
    );
    assert.equal(none.ok, false);
    assert.match(none.text, /^p2p: \+15559999: no gateway serves 15559999 \(503\)$/);
  },
);
