/**
 * A conference room with a PIN (getconfroom pin=…), with sipp as the caller: the PIN is asked in early media and
 * typed as RFC 4733 events (a pcap written here) or SIP INFO; the right one joins the room (200, listed as a
 * participant), wrong ones (ivrpintries) end with 403 and no key with 408; the caller never joins then.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipWithout } from '../helpers/tools.js';
import { runTool, SIPP, sleep, sippTrace, type CallEnv } from '../calls/helpers.js';
import { req, src } from '../helpers/source.js';
import { API_KEY } from '../helpers/server.js';
import { accessScenario, callerCsv, dtmfPcap, startIvrEnv, type UacPlan } from './helpers.js';

let env: CallEnv;
let work: string;
let room: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-roompin-'));
  env = await startIvrEnv({ ivrtimeout: '2', ivrinterdigit: '2', ivrpintries: '2' });
  await env.services.users.create({ username: 'host', password: 'hostpw12' });
  await env.services.users.create({ username: 'guest', password: 'guestpw12' });
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

const api = (p: Record<string, string>) =>
  env.t.srv.gateway.handle(
    req('getconfroom', { authkey: API_KEY, authid: 'host', authpwd: 'hostpw12', ...p }, src('203.0.113.7')),
  );

function call(name: string, plan: UacPlan) {
  const scen = join(work, `${name}.xml`);
  accessScenario(scen, plan);
  return runTool(
    SIPP,
    [
      `127.0.0.1:${env.udpPort}`,
      ...['-sf', scen, '-inf', callerCsv(work, `${name}.csv`, 'guest', 'guestpw12'), '-s', room, '-m', '1'],
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

test('getconfroom pin=: set, shown, refused when not digits, removed with none', async () => {
  const set = await api({ pin: '7788' });
  assert.equal(set.ok, true, set.text);
  room = String(set.fields!.room);
  assert.equal(set.fields!.pin, '7788');
  assert.equal((await api({})).fields!.pin, '7788');
  const bad = await api({ pin: '12ab' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /4 to 16 digits/);
  assert.equal((await api({ pin: 'none' })).fields!.pin, '');
  assert.equal(await env.services.numbers.confRoomPin(room), '');
  assert.equal((await api({ pin: '7788' })).ok, true);
});

test('the right PIN by RFC 4733 events joins the room; a participant while the call lasts', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const pcap = join(work, 'pin.pcap');
  dtmfPcap(pcap, '7788#');
  const running = call('join', { auth: true, pcap, final: 200, holdMs: 2500 });
  let seen = 0;
  for (let i = 0; i < 80 && !seen; i++) {
    await sleep(100);
    seen = (await env.b2bua.conference.participants(room)).length;
  }
  const r = await running;
  assert.equal(r.code, 0, 'caller joined and left: ' + r.out.slice(-1500));
  assert.equal(seen, 1, 'listed as a participant after the PIN');
  assert.ok(sippTrace(join(work, 'join.msg')).some((m) => m.first.startsWith('SIP/2.0 183')));
  assert.equal((await env.b2bua.conference.participants(room)).length, 0);
});

test('wrong PIN twice by SIP INFO: 403 (never joined); no key: 408', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const joined: number[] = [];
  const poll = setInterval(() => void env.b2bua.conference.participants(room).then((l) => joined.push(l.length)), 100);
  try {
    const wrong = await call('wrong', { auth: true, info: '1111#,,2222#', final: 403 });
    assert.equal(wrong.code, 0, 'caller got 403: ' + wrong.out.slice(-1500));
    const silent = await call('silent', { auth: true, final: 408 });
    assert.equal(silent.code, 0, 'caller got 408: ' + silent.out.slice(-1500));
  } finally {
    clearInterval(poll);
  }
  assert.ok(joined.length > 5 && joined.every((n) => n === 0), 'nobody joined');
  const res = sippTrace(join(work, 'wrong.msg')).find((m) => m.first.startsWith('SIP/2.0 403'))!.first;
  assert.match(res, /wrong conference PIN/);
});
