/**
 * Slow clients cannot hold API connections: 200 connections that trickle an HTTP header (slowloris), a raw line
 * that never ends, and connections that send nothing are all closed by the header/request timeouts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
const CONNECTIONS = Number(process.env.SLOW_N ?? 200);

before(async () => {
  t = await startTestServer({ apiheadertimeout: '2', apirequesttimeout: '3', apilimitip: '0' });
});
after(() => t.stop());

interface Slow {
  sock: Socket;
  closedAt?: number;
}

function openSlow(first: string, trickle: string | undefined): Promise<Slow> {
  return new Promise((resolve, reject) => {
    const sock = connect(t.port, '127.0.0.1');
    const slow: Slow = { sock };
    let timer: NodeJS.Timeout | undefined;
    sock.on('error', () => undefined);
    sock.resume(); // read (and drop) answers, so the server's close is seen
    sock.on('close', () => {
      slow.closedAt = Date.now();
      if (timer) clearInterval(timer);
    });
    sock.once('connect', () => {
      if (first) sock.write(first);
      if (trickle) timer = setInterval(() => sock.writable && sock.write(trickle), 500);
      resolve(slow);
    });
    sock.once('error', reject);
  });
}

async function allClosedWithin(list: Slow[], ms: number): Promise<number> {
  const end = Date.now() + ms;
  while (Date.now() < end && list.some((s) => s.closedAt === undefined)) await new Promise((r) => setTimeout(r, 200));
  const open = list.filter((s) => s.closedAt === undefined).length;
  for (const s of list) s.sock.destroy();
  return open;
}

test(`${CONNECTIONS} slowloris HTTP connections are closed by the header timeout`, { timeout: 30_000 }, async () => {
  const started = Date.now();
  const list: Slow[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    list.push(await openSlow('GET /mvapireq/?apientry=ver HTTP/1.1\r\nHost: x\r\n', `X-Slow-${i}: a\r\n`));
  }
  const open = await allClosedWithin(list, 15_000);
  assert.equal(open, 0, `${open} of ${CONNECTIONS} slow connections are still open`);
  assert.ok(Date.now() - started < 20_000);
  // the server still answers
  const r = await fetch(t.url('/mvapireq/?apientry=ver'));
  assert.equal(r.status, 200);
});

test('a raw line that never ends and a silent connection are closed', { timeout: 30_000 }, async () => {
  const list = [await openSlow('apientry=ver&x=', 'a'), await openSlow('', undefined)];
  const open = await allClosedWithin(list, 12_000);
  assert.equal(open, 0, `${open} connections are still open`);
});

test('a slow request body is closed by the request timeout', { timeout: 30_000 }, async () => {
  const head = 'POST /mvapireq/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n';
  const list = [await openSlow(head, 'apientry=ver&')];
  const open = await allClosedWithin(list, 12_000);
  assert.equal(open, 0, 'the slow body connection is still open');
});
