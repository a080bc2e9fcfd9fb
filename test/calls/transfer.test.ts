/**
 * Call transfer by REFER (src/sip/calls/transfer.ts) with sipp as every party:
 * - blind: alice calls bob, bob REFERs her to a number behind a gateway (C); bob gets 202, NOTIFY 100 then 200 and
 *   a BYE; C gets an INVITE without SDP and with Referred-By, then T's SDP in the ACK; alice's BYE reaches C. The
 *   first call's CDR says "transferred to …", the new leg's CDR is bob's (the referrer pays) and costs money; the
 *   same when bob hangs up right after NOTIFY 100 (as phones do on a blind transfer);
 * - attended: alice calls bob and carol, REFERs bob with Replaces naming her call with carol: bob and carol are
 *   re-INVITEd to each other, both of alice's legs end, bob's BYE reaches carol;
 * - refused: a REFER to an unknown target gets NOTIFY 404, one by a referrer without credit NOTIFY 402, a Replaces
 *   naming no dialog NOTIFY 481, and the call stays up (alice's BYE reaches the callee); with allowtransfer=false
 *   (the option, or the account's field set by setfield) the REFER is answered 403; a REFER outside a dialog 405,
 *   with an unknown dialog 481.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCallEnv, uas, uac, uacCsv, registerAt, setRates, waitFor, type CallEnv } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';
import { caller, LOCAL } from '../users/helpers.js';

let env: CallEnv;
let work: string;
let alice: number;
let bob: number;

type Cdr = { userid: number; callee: string; reason: string; cost: number; duration: number; route: string };

const cdrsOf = (userid: number): Promise<Cdr[]> =>
  env.services.storage.db
    .selectFrom('tb_cdrs')
    .select(['userid', 'callee', 'reason', 'cost', 'duration', 'route'])
    .where('userid', '=', userid)
    .orderBy('id')
    .execute() as Promise<Cdr[]>;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-transfer-'));
  env = await startCallEnv();
  alice = (await env.services.users.create({ username: 'alice', password: 'alicepw' })).id;
  bob = (await env.services.users.create({ username: 'bob', password: 'bobpw' })).id;
  await env.services.users.create({ username: 'carol', password: 'carolpw' });
  const currency = (await env.services.ledger.balance(bob))!.currency;
  await env.services.ledger.post({ userId: bob, amount: 5_000_000, reason: 'test' });
  await setRates(env.services, currency, [{ prefix: '49', price: 600_000 }]);
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The sipp error files of the work folder (what a failed scenario saw), for the assertion messages. */
const sippErrors = () =>
  readdirSync(work)
    .filter((f) => f.endsWith('.err'))
    .map((f) => `${f}: ${readFileSync(join(work, f), 'utf8').slice(-1500)}`)
    .join('\n');

const clearCdrs = () => env.services.storage.db.deleteFrom('tb_cdrs').execute();

test('blind transfer: bob refers alice to a number, NOTIFY 100 then 200, alice ends up talking to C', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const target = await uas(work, 'uas_xfer_target.xml');
  env.router.gateways = [
    {
      id: 1,
      name: 'gwX',
      host: '127.0.0.1',
      port: target.port,
      transport: 'udp',
      username: '',
      password: '',
      number: '',
    },
  ];
  const referrer = await uas(work, 'uas_refer_blind.xml', ['-key', 'target', '4930123456']);
  registerAt(env, 'bob', referrer.port);
  const caller = uac(env, work, 'uac_transferee.xml', uacCsv(work, 'blind.csv', [['alice', 'alicepw', 'bob']]), 1, [
    '-d',
    '2200',
  ]);
  const [a, b, t] = await Promise.all([caller, referrer.done, target.done]);
  assert.equal(b.code, 0, 'referrer (bob) sipp: ' + b.out.slice(-300) + sippErrors());
  assert.equal(a.code, 0, 'transferee (alice) sipp: ' + a.out.slice(-300) + sippErrors());
  assert.equal(t.code, 0, 'target sipp: ' + t.out.slice(-300) + sippErrors());
  const first = await waitFor(
    () => cdrsOf(alice),
    (r) => r.length >= 1,
  );
  assert.equal(first.length, 1);
  assert.equal(first[0]!.reason, 'transferred to 4930123456');
  assert.equal(first[0]!.callee, 'bob');
  // the transfer's leg is bob's: he made it; charged at the 49 rate for about two seconds (1 s increments)
  const leg = await waitFor(
    () => cdrsOf(bob),
    (r) => r.length >= 1,
  );
  assert.equal(leg.length, 1);
  assert.equal(leg[0]!.callee, '4930123456');
  assert.match(leg[0]!.reason, /^normal/);
  assert.match(leg[0]!.route, /gw:gwX xfer:bob/);
  assert.ok(leg[0]!.duration >= 1 && leg[0]!.duration <= 4, `duration ${leg[0]!.duration}`);
  assert.ok(leg[0]!.cost > 0, 'the referrer paid for the leg');
  const balance = await env.services.ledger.balance(bob);
  assert.equal(balance!.credit, 5_000_000 - leg[0]!.cost);
  assert.equal(env.sip.dialogs.size, 0, 'every dialog left the table');
  assert.equal(env.b2bua.size(), 0);
});

test('blind transfer when the referrer hangs up right after NOTIFY 100: the transferee still reaches C', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const target = await uas(work, 'uas_xfer_target.xml');
  env.router.gateways = [
    {
      id: 1,
      name: 'gwX',
      host: '127.0.0.1',
      port: target.port,
      transport: 'udp',
      username: '',
      password: '',
      number: '',
    },
  ];
  const referrer = await uas(work, 'uas_refer_hangup.xml', ['-key', 'target', '4930123456']);
  registerAt(env, 'bob', referrer.port);
  const inf = uacCsv(work, 'hangup.csv', [['alice', 'alicepw', 'bob']]);
  const caller = uac(env, work, 'uac_transferee.xml', inf, 1, ['-d', '1500']);
  const [a, b, t] = await Promise.all([caller, referrer.done, target.done]);
  assert.equal(b.code, 0, 'referrer (bob) sipp: ' + b.out.slice(-300) + sippErrors());
  assert.equal(a.code, 0, 'transferee (alice) sipp: ' + a.out.slice(-300) + sippErrors());
  assert.equal(t.code, 0, 'target sipp: ' + t.out.slice(-300) + sippErrors());
  const first = await waitFor(
    () => cdrsOf(alice),
    (r) => r.length >= 1,
  );
  assert.deepEqual(
    first.map((r) => r.reason),
    ['transferred to 4930123456'],
  );
  const leg = await waitFor(
    () => cdrsOf(bob),
    (r) => r.length >= 1,
  );
  assert.equal(leg.length, 1);
  assert.match(leg[0]!.reason, /^normal/);
  assert.ok(leg[0]!.cost > 0, 'the referrer paid for the leg');
  assert.equal(env.sip.dialogs.size, 0, 'every dialog left the table');
});

test('attended transfer: alice joins bob and carol (Replaces), both of her legs end', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const carol = await uas(work, 'uas_xfer_joined.xml');
  registerAt(env, 'carol', carol.port);
  const trace = join(work, 'consult.msg');
  const consult = uac(env, work, 'uac_consult.xml', uacCsv(work, 'consult.csv', [['alice', 'alicepw', 'carol']]), 1, [
    '-trace_msg',
    '-message_file',
    trace,
  ]);
  // the consultation call's dialog as alice sees it: Call-ID, her tag, the server's tag (from its 200)
  const ids = await waitFor(
    () => {
      try {
        const text = readFileSync(trace, 'utf8');
        const ok = /SIP\/2\.0 200 OK[\s\S]*?\n\s*To:[^\n]*;tag=([^;\s>]+)/.exec(text);
        const callId = /Call-ID: *([^\s]+)/.exec(text);
        const from = /From:[^\n]*;tag=([^;\s>]+)/.exec(text);
        return ok && callId && from ? { toTag: ok[1]!, callId: callId[1]!, fromTag: from[1]! } : undefined;
      } catch {
        return undefined;
      }
    },
    (v) => v !== undefined,
  );
  assert.ok(ids, 'the consultation call was answered');
  await waitFor(
    () => env.b2bua.liveCalls().filter((l) => l.state === 'connected').length,
    (n) => n >= 1,
  );
  const bobSide = await uas(work, 'uas_transferee.xml', ['-d', '1500']);
  registerAt(env, 'bob', bobSide.port);
  const replaces = encodeURIComponent(`${ids.callId};to-tag=${ids.toTag};from-tag=${ids.fromTag}`);
  const referTo = `<sip:carol@127.0.0.1:${env.udpPort}?Replaces=${replaces}>`;
  const inf = join(work, 'refer.csv');
  writeFileSync(inf, `SEQUENTIAL\nalice;[authentication username=alice password=alicepw];bob;${referTo}\n`);
  const referrer = uac(env, work, 'uac_refer.xml', inf);
  const [r, x, b, k] = await Promise.all([referrer, consult, bobSide.done, carol.done]);
  assert.equal(r.code, 0, 'referrer (alice, first call) sipp: ' + r.out.slice(-300) + sippErrors());
  assert.equal(x.code, 0, 'referrer (alice, consultation call) sipp: ' + x.out.slice(-300) + sippErrors());
  assert.equal(b.code, 0, 'transferee (bob) sipp: ' + b.out.slice(-300) + sippErrors());
  assert.equal(k.code, 0, 'target (carol) sipp: ' + k.out.slice(-300) + sippErrors());
  const rows = await waitFor(
    () => cdrsOf(alice),
    (v) => v.length >= 3,
  );
  const reasons = rows.map((x) => `${x.callee}: ${x.reason}`).sort();
  assert.deepEqual(reasons, [
    'bob: transferred (attended)',
    'carol: normal (caller hung up)',
    'carol: transferred (attended)',
  ]);
  assert.equal(env.sip.dialogs.size, 0, 'every dialog left the table');
});

test('a REFER to an unknown target: NOTIFY 404, the call stays up until the caller hangs up', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const callee = await uas(work, 'uas_refer_refused.xml', ['-key', 'target', 'nosuchuser']);
  registerAt(env, 'bob', callee.port);
  const caller = uac(env, work, 'uac_auth.xml', uacCsv(work, 'refused.csv', [['alice', 'alicepw', 'bob']]), 1, [
    '-d',
    '1500',
  ]);
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(b.code, 0, 'referrer (bob) sipp: ' + b.out.slice(-300) + sippErrors());
  assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-300) + sippErrors());
  const rows = await waitFor(
    () => cdrsOf(alice),
    (v) => v.length >= 1,
  );
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.reason, 'normal (caller hung up)');
  // the refused target is on record for bob at no cost
  const refused = await cdrsOf(bob);
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.cost, 0);
  assert.match(refused[0]!.reason, /^404/);
});

test('a referrer without credit: NOTIFY 402, nothing charged, the call stays up', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const carol = (await env.services.users.byUsername('carol'))!;
  const before = (await env.services.ledger.balance(carol.id))!.credit;
  // a route to a gateway (never dialled: the credit check comes first)
  env.router.gateways = [
    { id: 1, name: 'gwX', host: '127.0.0.1', port: 9, transport: 'udp', username: '', password: '', number: '' },
  ];
  const callee = await uas(work, 'uas_refer_nocredit.xml', ['-key', 'target', '4930123456']);
  registerAt(env, 'carol', callee.port);
  const inf = uacCsv(work, 'nocredit.csv', [['alice', 'alicepw', 'carol']]);
  const [a, b] = await Promise.all([uac(env, work, 'uac_auth.xml', inf, 1, ['-d', '1500']), callee.done]);
  assert.equal(b.code, 0, 'referrer (carol) sipp: ' + b.out.slice(-300) + sippErrors());
  assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-300) + sippErrors());
  const rows = await waitFor(
    () => cdrsOf(alice),
    (v) => v.length >= 1,
  );
  assert.deepEqual(
    rows.map((r) => r.reason),
    ['normal (caller hung up)'],
  );
  const refused = await cdrsOf(carol.id);
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.cost, 0);
  assert.equal((await env.services.ledger.balance(carol.id))!.credit, before);
});

test('an attended transfer whose Replaces names no dialog: NOTIFY 481, the call stays up', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  await clearCdrs();
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'bob', callee.port);
  const referTo = `<sip:carol@127.0.0.1?Replaces=${encodeURIComponent('nosuchcall@x;to-tag=1;from-tag=2')}>`;
  const inf = join(work, 'badreplaces.csv');
  writeFileSync(inf, `SEQUENTIAL\nalice;[authentication username=alice password=alicepw];bob;${referTo}\n`);
  const [a, b] = await Promise.all([uac(env, work, 'uac_refer_badreplaces.xml', inf), callee.done]);
  assert.equal(a.code, 0, 'referrer (alice) sipp: ' + a.out.slice(-300) + sippErrors());
  assert.equal(b.code, 0, 'callee (bob) sipp: ' + b.out.slice(-300) + sippErrors());
  const rows = await waitFor(
    () => cdrsOf(alice),
    (v) => v.length >= 1,
  );
  assert.deepEqual(
    rows.map((r) => r.reason),
    ['normal (caller hung up)'],
  );
});

test('allowtransfer=false: the REFER is answered 403 and the call goes on', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  env.services.config.persist({ allowtransfer: 'false' });
  try {
    await clearCdrs();
    const callee = await uas(work, 'uas_refer_forbidden.xml', ['-key', 'target', 'carol']);
    registerAt(env, 'bob', callee.port);
    const caller = uac(env, work, 'uac_auth.xml', uacCsv(work, 'forbidden.csv', [['alice', 'alicepw', 'bob']]), 1, [
      '-d',
      '1200',
    ]);
    const [a, b] = await Promise.all([caller, callee.done]);
    assert.equal(b.code, 0, 'referrer (bob) sipp: ' + b.out.slice(-300) + sippErrors());
    assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-300) + sippErrors());
    const rows = await waitFor(
      () => cdrsOf(alice),
      (v) => v.length >= 1,
    );
    assert.equal(rows[0]!.reason, 'normal (caller hung up)');
    assert.equal((await cdrsOf(bob)).length, 0, 'nothing recorded for the refused transfer');
  } finally {
    env.services.config.persist({ allowtransfer: 'true' });
  }
});

test('an account with allowtransfer 0 (setfield): its REFER is answered 403, the call goes on', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const { call } = caller(env.t);
  const set = (v: string) =>
    call('setfield', { table: 'tb_users', fieldname: 'allowtransfer', fieldvalue: v, rowid: String(bob) }, LOCAL);
  const r = await set('0');
  assert.equal(r.ok, true, r.text);
  try {
    await clearCdrs();
    const callee = await uas(work, 'uas_refer_forbidden.xml', ['-key', 'target', 'carol']);
    registerAt(env, 'bob', callee.port);
    const inf = uacCsv(work, 'noxfer.csv', [['alice', 'alicepw', 'bob']]);
    const [a, b] = await Promise.all([uac(env, work, 'uac_auth.xml', inf, 1, ['-d', '1200']), callee.done]);
    assert.equal(b.code, 0, 'referrer (bob) sipp: ' + b.out.slice(-300) + sippErrors());
    assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-300) + sippErrors());
    const rows = await waitFor(
      () => cdrsOf(alice),
      (v) => v.length >= 1,
    );
    assert.deepEqual(
      rows.map((x) => x.reason),
      ['normal (caller hung up)'],
    );
  } finally {
    assert.equal((await set('1')).ok, true);
  }
  assert.equal(await env.services.users.allowsTransfer(bob), true);
});

test('a REFER outside a call: 405 without a To tag, 481 naming no dialog', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const r = await uac(env, work, 'uac_refer_nodialog.xml', uacCsv(work, 'nodialog.csv', [['alice', 'alicepw', 'bob']]));
  assert.equal(r.code, 0, 'sipp: ' + r.out.slice(-300) + sippErrors());
});
