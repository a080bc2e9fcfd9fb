/**
 * The callback access number end to end: a trunk caller whose number is a callback number of an account
 * (addcallbacknumber) calls the callbackaccessnumber, dials the destination by SIP INFO in early media and is refused
 * 486 (never answered: it costs the caller nothing); the server then calls the caller back (sipp leg A) and bridges
 * to the destination (sipp leg B), both legs billed to the account. A number that is no callback number: 403.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipWithout } from '../helpers/tools.js';
import { runTool, SIPP, setRates, waitFor, sippTrace, TestRouter, type CallEnv } from '../calls/helpers.js';
import { uas } from '../callcontrol/sipp.js';
import { CallControl } from '../../src/sip/callcontrol/controller.js';
import type { RouteDecision, RouteRequest } from '../../src/domain/routing/service.js';
import { accessScenario, callerCsv, startIvrEnv, type UacPlan } from './helpers.js';

const CB = '18005550199';
let env: CallEnv;
let work: string;
let cc: CallControl;
let erin: number;
const routes = new Map<string, number>();

/** Calls from 127.0.0.1 without credentials are a trunk's. */
class TrunkRouter extends TestRouter {
  override async gatewayForIp(): Promise<undefined> {
    return { id: 9, name: 'trunk', host: '127.0.0.1', username: '', registration: { register: false } } as never;
  }
}

/** The callback's legs: each number to the sipp peer listening for it. */
async function route(r: RouteRequest): Promise<RouteDecision> {
  const n = r.called.replace(/^\+/, '');
  const port = routes.get(n);
  if (!port) return { kind: 'reject', status: 404, reason: `no route to ${n}` };
  const q = await env.services.rating.quote({ id: r.user!.id, country: r.user!.country }, n);
  const gw = { id: 1, name: `gw${n}`, host: '127.0.0.1', port, transport: 'udp' as const, username: '', password: '' };
  return { kind: 'gateways', number: q.number, rate: q.rate, quote: q, candidates: [{ ...gw, number: q.number }] };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-cbaccess-'));
  env = await startIvrEnv({ callbackaccessnumber: CB, ivrtimeout: '3', ivrinterdigit: '2' }, (s) => new TrunkRouter(s));
  erin = (await env.services.users.create({ username: 'erin', password: 'erinpw12' })).id;
  const currency = (await env.services.ledger.balance(erin))!.currency;
  await setRates(env.services, currency, [
    { prefix: '49', price: 600_000 },
    { prefix: '36', price: 1_200_000 },
  ]);
  await env.services.ledger.post({ userId: erin, amount: 20_000_000, reason: 'test' });
  await env.services.numbers.addCallbackNumber(erin, '4915550042');
  cc = new CallControl({
    services: env.services,
    sip: env.sip,
    live: env.services.liveCalls,
    routing: { route },
    media: env.b2bua.media,
    options: { aRingMs: 8000, bRingMs: 8000 },
  });
  env.b2bua.startCallback = async (u, a, b) => (await cc.start('callback', u, a, b)).callid;
});
after(async () => {
  await cc?.stop();
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

function call(name: string, from: string, plan: UacPlan) {
  const scen = join(work, `${name}.xml`);
  accessScenario(scen, plan);
  return runTool(
    SIPP,
    [
      `127.0.0.1:${env.udpPort}`,
      ...['-sf', scen, '-inf', callerCsv(work, `${name}.csv`, from, 'x'), '-s', CB, '-m', '1'],
      ...['-i', '127.0.0.1', '-mi', '127.0.0.1', '-nostdin', '-timeout', '25s', '-timeout_error'],
      ...[
        '-trace_err',
        '-error_file',
        join(work, `${name}.err`),
        '-trace_msg',
        '-message_file',
        join(work, `${name}.msg`),
      ],
    ],
    work,
  );
}

test('a callback number calls in, dials 3612345# by INFO, gets 486; called back and bridged, both legs billed', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const a = await uas(work, 'a_hangs_up.xml');
  const b = await uas(work, 'b_bridged.xml');
  routes.set('4915550042', a.port);
  routes.set('3612345', b.port);
  const caller = await call('cb', '4915550042', { auth: false, info: '3612345#', final: 486 });
  assert.equal(caller.code, 0, 'the caller got 486: ' + caller.out.slice(-1500));
  const refusal = sippTrace(join(work, 'cb.msg')).find((m) => m.first.startsWith('SIP/2.0 486'))!.first;
  assert.match(refusal, /calling you back/);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, `leg A (the caller called back): ${ra.out.slice(-1500)}`);
  assert.equal(rb.code, 0, `leg B (the destination): ${rb.out.slice(-1500)}`);
  const rows = await waitFor(
    () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', erin).execute(),
    (r) => r.filter((x) => x.leg === 'a' || x.leg === 'b').length === 2,
  );
  const legs = Object.fromEntries(rows.map((r) => [r.leg, r]));
  assert.equal(legs.a!.callee, '4915550042');
  assert.equal(legs.b!.callee, '3612345');
  assert.ok(Number(legs.a!.cost) + Number(legs.b!.cost) > 0, 'billed to the account');
});

test('a number that is no callback number is refused 403 at once; nothing billed', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const before = (await env.services.storage.db.selectFrom('tb_cdrs').selectAll().execute()).length;
  const r = await call('stranger', '4915550777', { auth: false, early: false, final: 403 });
  assert.equal(r.code, 0, 'the caller got 403: ' + r.out.slice(-1500));
  const lines = sippTrace(join(work, 'stranger.msg'));
  assert.ok(lines.some((m) => m.first.startsWith('SIP/2.0 403') && /not a registered callback number/.test(m.first)));
  assert.equal((await env.services.storage.db.selectFrom('tb_cdrs').selectAll().execute()).length, before);
});
