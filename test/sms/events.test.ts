/**
 * sms.status and sms.incoming as signed webhooks, end to end: a loopback SMSC (test/helpers/smsc.ts), a real HTTP
 * receiver that checks the HMAC signature as docs/webhooks.md says; an SMS sent through the API is announced when
 * submitted and when its receipt says delivered, and a mobile-originated SMS is announced with its text.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { signatureValid } from '../helpers/webhooks.js';
import { TestSmsc } from '../helpers/smsc.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

const SECRET = 'whsec-sms-0123456789';
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
interface Hit {
  event: string;
  verified: boolean;
  data: Record<string, unknown>;
}
const hits: Hit[] = [];
let receiver: Server;
let smsc: TestSmsc;
let t: TestServer;
const call = (e: string, p: Record<string, string>) =>
  t.srv.gateway.handle(req(e, { ...admin, ...p }, src('127.0.0.1')));

const verified = (headers: Record<string, string | string[] | undefined>, body: string) =>
  signatureValid(SECRET, headers, body);

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(hits)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  receiver = createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(body) as { data?: Record<string, unknown> };
      const event = String(rq.headers['x-voxswitch-event']);
      hits.push({ event, verified: verified(rq.headers, body), data: parsed.data ?? {} });
      rs.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  smsc = await TestSmsc.start({ receiptAfterMs: 50 });
  t = await startTestServer({
    usesip: 'false',
    defaultcountrycode: '1',
    apilimitip: '0',
    apilimituser: '0',
    mailqueueinterval: '1',
    webhookretrydelay: '0',
  });
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  assert.equal((await call('addwebhook', { url, events: 'sms.*', secret: SECRET })).ok, true);
  const u = await call('newuseri', { u_username: 'bob', u_password: 'bobpw', u_credit: '5.00', u_currency: 'USD' });
  assert.equal(u.ok, true, u.text);
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.05,60,60,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  const gw = {
    name: 'main',
    host: '127.0.0.1',
    port: String(smsc.port),
    system_id: 'vox',
    password: 'secret',
    default_sender: 'VoxTest',
  };
  assert.equal((await call('addsmsgateway', gw)).ok, true);
  await until('bound', async () => (await call('smsgateways', {})).rows?.[0]?.state === 'bound');
});
after(async () => {
  await t?.stop();
  await smsc?.close();
  receiver?.close();
});

test('an SMS is announced as submitted, then delivered (sms.status, signed), once each', async () => {
  const s = await t.srv.gateway.handle(
    req(
      'sms',
      { authkey: API_KEY, authid: 'bob', authpwd: 'bobpw', bnum: '15551230001', txt: 'hi' },
      src('203.0.113.7'),
    ),
  );
  assert.equal(s.ok, true, s.text);
  const id = Number(s.fields?.id);
  const states = (x: Hit) => x.event === 'sms.status' && x.data.id === id;
  await until('delivered event', () => hits.some((h) => states(h) && h.data.state === 'delivered'));
  const mine = hits.filter(states);
  assert.ok(
    mine.every((h) => h.verified),
    'every delivery carries a valid signature',
  );
  assert.deepEqual(
    mine.map((h) => h.data.state),
    ['submitted', 'delivered'],
  );
  const last = mine.at(-1)!.data;
  assert.equal(last.to, '15551230001');
  assert.equal(last.parts, 1);
  assert.equal(last.gateway, 'main');
});

test('a mobile-originated SMS is announced as sms.incoming with its sender, number and text', async () => {
  assert.deepEqual(await smsc.mo('15559990000', '15550001111', 'incoming hello'), [0]);
  const hit = await until('incoming event', () => hits.find((h) => h.event === 'sms.incoming'));
  assert.equal(hit.verified, true);
  assert.equal(hit.data.from, '15559990000');
  assert.equal(hit.data.to, '15550001111');
  assert.equal(hit.data.text, 'incoming hello');
  assert.equal(hit.data.gateway, 'main');
});
