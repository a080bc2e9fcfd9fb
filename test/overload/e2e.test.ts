/**
 * Overload control on the real server: while the event loop is blocked past overloaddelay (two windows), a new REGISTER and a new
 * INVITE get 503 with Retry-After and an API request gets ERROR; a BYE outside any dialog still reaches the dialog
 * layer (481, not 503); once the loop is free again, REGISTER is challenged as usual. `info` counts the refusals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { udpAsk } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';

let t: TestServer;
let sipPort = 0;

before(async () => {
  t = await startTestServer({ overloaddelay: '100' });
  sipPort = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
});
after(() => t.stop());

let seq = 0;
function request(method: string, toTag = ''): string {
  const n = ++seq;
  const uri = method === 'REGISTER' ? 'sip:127.0.0.1' : 'sip:bob@127.0.0.1';
  return (
    `${method} ${uri} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-ovl-${n}-${Date.now()};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=ovl${n}\r\n` +
    `To: <${method === 'REGISTER' ? 'sip:alice@127.0.0.1' : 'sip:bob@127.0.0.1'}>${toTag}\r\n` +
    `Call-ID: ovl-${n}-${Date.now()}@test\r\nCSeq: 1 ${method}\r\n` +
    (method === 'BYE' ? '' : 'Contact: <sip:alice@127.0.0.1:5999>\r\n') +
    'Content-Length: 0\r\n\r\n'
  );
}

function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

const status = (answer: string) => Number(/^SIP\/2\.0 (\d{3})/.exec(answer)?.[1]);

test('a blocked event loop: new INVITE/REGISTER get 503 + Retry-After, BYE passes, the API answers ERROR', async () => {
  const api = `http://127.0.0.1:${t.port}/mvapireq/?apientry=version&authkey=${API_KEY}&format=json`;
  const gate = t.srv.services.overload!;
  // the start-up work is over and the loop is quiet: REGISTER is challenged as usual
  await eventually(async () => status(await udpAsk(sipPort, request('REGISTER'))) === 401, 'REGISTER admitted', 5000);
  const base = gate.stats();

  // the loop blocked 300 ms out of every 350 until two windows in a row are slow, and while the requests are in flight
  const storm = setInterval(() => blockLoop(300), 50);
  await eventually(() => gate.stats().overloaded, 'overloaded', 5000).catch(
    (e) => (clearInterval(storm), Promise.reject(e)),
  );
  const answers = Promise.all([
    udpAsk(sipPort, request('REGISTER'), 10_000),
    udpAsk(sipPort, request('INVITE'), 10_000),
    udpAsk(sipPort, request('BYE', ';tag=nosuchdialog'), 10_000),
    fetch(api).then((r) => r.json() as Promise<{ status: string; text: string }>),
  ]).finally(() => clearInterval(storm));
  const [reg, inv, bye, apiAnswer] = await answers;
  assert.equal(status(reg), 503, reg);
  assert.match(reg, /\r\nRetry-After: 2\r\n/);
  assert.equal(status(inv), 503, inv);
  assert.equal(status(bye), 481, bye);
  assert.equal(apiAnswer.status, 'ERROR');
  assert.equal(apiAnswer.text, 'server overloaded, retry in 2 s');
  const after = gate.stats();
  assert.equal(after.refused_sip - base.refused_sip, 2);
  assert.equal(after.refused_api - base.refused_api, 1);

  // the loop is free again: a later window admits, and info shows the counts
  await eventually(async () => status(await udpAsk(sipPort, request('REGISTER'))) === 401, 'REGISTER admitted', 5000);
  const info = (await (await fetch(api.replace('version', 'info'))).json()) as { fields: Record<string, string> };
  assert.ok(Number(info.fields.overload_refused_sip) >= 2, JSON.stringify(info.fields));
  assert.ok(Number(info.fields.overload_refused_api) >= 1);
  assert.equal(info.fields.overload_threshold_ms, '100');
});
