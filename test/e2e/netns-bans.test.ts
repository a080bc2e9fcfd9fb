/**
 * Bans from a real non-loopback address: a network namespace joined to this host by a veth pair (10.200.N.0/30,
 * only between the two ends) runs SIPVicious svcrack (a digest password guesser) and a curl API password guesser
 * against the server bound on the host end. After `authfailban` failures the address is banned: SIP requests are
 * no longer answered, the API refuses it, and bannedlist shows it. Needs root and iproute2 (skipped with a reason
 * outside CI; required in CI). The namespace is removed afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { caller, LOCAL } from '../users/helpers.js';
import { makeNetnsHost, netnsMissing, type NetnsHost } from '../helpers/netns.js';

const THRESHOLD = 5;

const reason = netnsMissing(['svcrack', 'curl']) || undefined;
if (reason && process.env.CI === 'true') throw new Error(`netns ban test cannot run in CI: ${reason}`);
if (reason) console.log(`# skipping the network-namespace ban tests: ${reason}`);

let t: TestServer | undefined;
let sipPort = 0;
let ns: NetnsHost;
let HOST = '';
let PEER = '';
const inNs = (cmd: string, args: string[], timeout = 60_000) => ns.exec(cmd, args, timeout);

before(async () => {
  if (reason) return;
  ns = await makeNetnsHost('ban', 200);
  ({ host: HOST, peer: PEER } = ns);
  t = await startTestServer({
    apibindaddr: HOST,
    sipbindaddr: HOST,
    authfailban: String(THRESHOLD),
    authfailwindow: '600',
    bantime: '600',
    apilimitip: '0',
    apilimituser: '0',
  });
  sipPort = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const { call } = caller(t);
  const r = await call('newuseri', { u_username: 'alice', u_password: 'Alice-secret-77' }, LOCAL);
  assert.equal(r.ok, true, r.text);
});

after(async () => {
  await t?.stop();
  if (!reason) await ns?.remove();
});

test(
  'svcrack over SIP from another address is banned after authfailban failures',
  { skip: reason, timeout: 90_000 },
  async () => {
    const s = t!.srv.services;
    assert.equal(s.bans.isBanned(PEER), false);
    // 40 guesses at most, bounded in time; svcrack stops by itself when the range is done or nothing answers
    await inNs('timeout', ['40', 'svcrack', '-u', 'alice', '-r', '1000-1039', '-p', String(sipPort), HOST]);
    assert.equal(s.bans.isBanned(PEER), true, `${PEER} is banned after the guesses`);
    // a banned address gets no SIP answer any more
    const again = await inNs('timeout', ['20', 'svcrack', '-u', 'alice', '-r', '1-3', '-p', String(sipPort), HOST]);
    assert.doesNotMatch(String(again.stdout), /alice\s*\|\s*\d+/, 'no password found');
    const { call } = caller(t!);
    const list = await call('bannedlist', {}, LOCAL);
    assert.ok(
      (list.rows ?? []).some((r) => r.ip === PEER),
      `bannedlist shows ${PEER}: ${JSON.stringify(list.rows)}`,
    );
    // the API refuses the banned address too
    const api = await inNs('curl', ['-s', '-m', '5', `http://${HOST}:${t!.port}/mvapireq/?apientry=ver`]);
    assert.doesNotMatch(String(api.stdout), /\r\nOK$/);
  },
);

test('an API password guesser from another address is banned', { skip: reason, timeout: 60_000 }, async () => {
  const { call } = caller(t!);
  assert.equal((await call('delbanned', { ip: 'all' }, LOCAL)).ok, true);
  const s = t!.srv.services;
  assert.equal(s.bans.isBanned(PEER), false);
  const url = (pwd: string) =>
    `http://${HOST}:${t!.port}/mvapireq/?apientry=balance&authkey=${API_KEY}&authid=alice&authpwd=${pwd}`;
  for (let i = 0; i < THRESHOLD + 3 && !s.bans.isBanned(PEER); i++)
    await inNs('curl', ['-s', '-m', '5', url(`guess${i}`)]);
  assert.equal(s.bans.isBanned(PEER), true, `${PEER} is banned after ${THRESHOLD} wrong API passwords`);
  const right = await inNs('curl', ['-s', '-m', '5', url('Alice-secret-77')]);
  assert.doesNotMatch(String(right.stdout), /\r\nOK$/, 'even the right password is refused while banned');
  const list = await call('bannedlist', {}, LOCAL);
  assert.ok((list.rows ?? []).some((r) => r.ip === PEER));
});
