/** The SIP core as `voxswitch serve` wires it: listeners from the sip* options, answering real SIP, state visible to the API. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { udpAsk } from '../helpers/clients.js';
import { skipWithout, toolPath } from '../helpers/tools.js';

const run = promisify(execFile);
let t: TestServer;

before(async () => {
  t = await startTestServer({ apilimitip: '0', sipapi: 'true' });
  assert.ok(
    (await t.srv.gateway.handle(req('newuseri', { u_username: 'alice', u_password: 'alicepw1' }, src('127.0.0.1')))).ok,
  );
});
after(() => t.stop());

test('SIP listeners are started and listed by info', async () => {
  const kinds = t.srv.services.listeners.map((l) => l.kind);
  assert.ok(kinds.includes('sip udp'), kinds.join(','));
  assert.ok(kinds.includes('sip tcp'), kinds.join(','));
  const info = await t.srv.gateway.handle(req('info', {}, src('127.0.0.1')));
  assert.match(String(info.fields?.listeners), /sip udp 127\.0\.0\.1:\d+/);
});

test('OPTIONS over UDP is answered 200', async () => {
  const port = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const msg =
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-int-1;rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:probe@127.0.0.1>;tag=a1\r\nTo: <sip:127.0.0.1:${port}>\r\nCall-ID: int-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
  const answer = await udpAsk(port, msg);
  assert.match(answer, /^SIP\/2\.0 200 /);
  assert.match(answer, /Call-ID: int-1@127\.0\.0\.1/i);
});

test('a sipsak REGISTER with digest makes the user online for the API', async (c) => {
  if (skipWithout(c, 'sipsak')) return;
  const port = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const before = await t.srv.gateway.handle(req('verifyuser', { userusername: 'alice' }, src('127.0.0.1')));
  assert.equal(before.text, '1');
  const r = await run(
    toolPath('sipsak'),
    ['-U', '-x', '120', '-s', 'sip:alice@127.0.0.1', '-r', String(port), '-u', 'alice', '-a', 'alicepw1', '-vv'],
    { timeout: 10000 },
  ).catch((e: { stdout?: string }) => e);
  assert.match(String(r.stdout), /All usrloc tests completed successful/);
  const after = await t.srv.gateway.handle(req('verifyuser', { userusername: 'alice' }, src('127.0.0.1')));
  assert.equal(after.text, '2');
});

test('the API over SIP: an OPTIONS with X-MVAPI is answered with the API answer as its body', async () => {
  const port = t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const msg =
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5997;branch=z9hG4bK-int-api;rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:probe@127.0.0.1>;tag=a2\r\nTo: <sip:127.0.0.1:${port}>\r\nCall-ID: int-api@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n` +
    `X-MVAPI: apientry=verifyuser&userusername=nosuchuser\r\nContent-Length: 0\r\n\r\n`;
  const answer = await udpAsk(port, msg);
  assert.match(answer, /^SIP\/2\.0 200 /);
  assert.ok(answer.endsWith('\r\n\r\n0\r\nOK'), JSON.stringify(answer.slice(-40)));
});
