/**
 * Signed webhooks with a real receiver (node:http on loopback) that verifies the signature the way
 * docs/webhooks.md tells a receiver to: it answers 500 first, then 200 → two attempts, one event id, both listed
 * in webhookdeliveries. Also: URL and event rules, secrets encrypted at rest and never listed, admin level, and
 * the same delivery flow on PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { usePgTestServer } from '../helpers/pg.js';
import { req, src } from '../helpers/source.js';
import { signatureValid } from '../helpers/webhooks.js';

const SECRET = 'whsec-0123456789abcdef';
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
const opts = { usesip: 'false', mailqueueinterval: '1', webhookretrydelay: '0', apilimitip: '0' };

interface Hit {
  id: string;
  event: string;
  verified: boolean;
  body: string;
  at: number;
}
let receiver: Server;
let hookUrl: string;
const hits: Hit[] = [];
/** The status the receiver answers, by attempt number of each event id. */
let answer: (n: number) => number = () => 200;

const verified = (headers: Record<string, string | string[] | undefined>, body: string) =>
  signatureValid(SECRET, headers, body);

before(async () => {
  receiver = createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(rq.headers['x-voxswitch-id']);
      hits.push({
        id,
        event: String(rq.headers['x-voxswitch-event']),
        verified: verified(rq.headers, body),
        body,
        at: Date.now(),
      });
      rs.statusCode = answer(hits.filter((h) => h.id === id).length);
      rs.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
});
after(() => receiver.close());

async function waitFor(pred: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function retriedDelivery(t: TestServer): Promise<void> {
  const call = (e: string, p: Record<string, string>) =>
    t.srv.gateway.handle(req(e, { ...admin, ...p }, src('127.0.0.1')));
  const add = await call('addwebhook', { url: hookUrl, events: 'sms.*,fax.status', secret: SECRET });
  assert.equal(add.ok, true, add.text);
  const hookid = String(add.fields!.id);
  answer = (n) => (n === 1 ? 500 : 200);
  const id = await t.srv.services.webhooks.emit('sms.status', { messageid: 'm-1', state: 'delivered' });
  await waitFor(() => hits.filter((h) => h.id === id).length >= 2);
  const mine = hits.filter((h) => h.id === id);
  assert.equal(mine.length, 2, 'two attempts');
  assert.ok(
    mine.every((h) => h.verified),
    'every attempt carries a valid signature',
  );
  assert.equal(mine[0]!.body, mine[1]!.body, 'the same body (and event id) on the retry');
  const ev = JSON.parse(mine[0]!.body);
  assert.deepEqual(Object.keys(ev).sort(), ['created', 'data', 'id', 'kind']);
  assert.equal(ev.id, id);
  assert.equal(ev.kind, 'sms.status');
  assert.equal(mine[0]!.event, 'sms.status');
  assert.deepEqual(ev.data, { messageid: 'm-1', state: 'delivered' });
  // the delivery log: one row per attempt
  // the receiver saw the request before voxswitch recorded the answer: read until the row's final state
  let rows: Array<Record<string, unknown>> = [];
  for (const until = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 50))) {
    const list = await call('webhookdeliveries', { hookid, lines: '10' });
    assert.equal(list.ok, true, list.text);
    rows = list.rows!.filter((r) => r.event_id === id);
    if (rows[0]?.state === 'done' || Date.now() > until) break;
  }
  assert.deepEqual(
    rows.map((r) => [r.attempt, r.state, r.status]),
    [
      [2, 'done', 200],
      [1, 'retried', 500],
    ],
  );
  assert.ok(rows.every((r) => Number(r.latency_ms) >= 0));
  assert.equal(rows[1]!.error, 'HTTP 500');
  // an event kind the hook did not subscribe to is not delivered
  const n = hits.length;
  await t.srv.services.webhooks.emit('mail.failed', { id: 1 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hits.length, n);
  assert.equal((await call('delwebhook', { id: hookid })).ok, true);
}

test('a delivery answered 500 then 200: two signed attempts with one event id, both in webhookdeliveries', async () => {
  const t = await startTestServer(opts);
  try {
    await retriedDelivery(t);
  } finally {
    await t.stop();
  }
});

const pg = usePgTestServer('webhook', opts);
test('the same on PostgreSQL', async (c) => {
  if (!pg.t) return c.skip(pg.skip);
  await retriedDelivery(pg.t);
});

test('webhook rules: URLs, events, secrets at rest, level', async () => {
  const t = await startTestServer({ usesip: 'false', mailqueueinterval: '0', apilimitip: '0' });
  const call = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, src('127.0.0.1')));
  try {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ url: 'http://169.254.169.254/latest/meta-data/' }, /link-local and cloud metadata addresses are refused/],
      [{ url: 'http://[fe80::1]/x' }, /link-local/],
      [{ url: 'http://metadata.google.internal/' }, /link-local/],
      [{ url: 'ftp://example.org/x' }, /only http and https/],
      [{ url: 'http://user:pw@example.org/' }, /credentials/],
      [{ url: 'not a url' }, /not a URL/],
      [{ events: 'sms.sent' }, /unknown event kind "sms.sent"/],
      [{ events: '' }, /events: missing/],
      [{ secret: 'short' }, /secret: 16-256/],
    ];
    for (const [p, re] of bad) {
      const r = await call('addwebhook', {
        ...admin,
        url: 'https://hooks.example.org/in',
        events: '*',
        secret: SECRET,
        ...p,
      });
      assert.equal(r.ok, false, JSON.stringify(p));
      assert.match(r.text, re);
    }
    const ok = await call('addwebhook', {
      ...admin,
      url: 'https://hooks.example.org/in',
      events: 'mail.failed, call.*',
      secret: SECRET,
    });
    assert.equal(ok.ok, true, ok.text);
    const row = await t.srv.services.storage.db.selectFrom('tb_webhooks').selectAll().executeTakeFirstOrThrow();
    assert.ok(!row.secret_enc.includes(SECRET) && row.secret_enc.startsWith('v1:'), 'the secret is encrypted');
    const list = await call('webhooks', admin);
    assert.equal(list.rows!.length, 1);
    assert.equal(list.rows![0]!.events, 'mail.failed,call.*');
    assert.ok(!JSON.stringify(list).includes(SECRET), 'never listed');
    const made = await call('newuseri', { ...admin, u_username: 'eve', u_password: 'evepw-1234' });
    assert.equal(made.ok, true, made.text);
    const eve = await call('webhooks', { authkey: API_KEY, authid: 'eve', authpwd: 'evepw-1234' });
    assert.equal(eve.ok, false, 'admins only');
    assert.match((await call('delwebhook', { ...admin, id: '999' })).text, /no webhook 999/);
  } finally {
    await t.stop();
  }
});

test('with webhookallowprivate a link-local URL is accepted', async () => {
  const t = await startTestServer({ usesip: 'false', mailqueueinterval: '0', webhookallowprivate: 'true' });
  try {
    const r = await t.srv.gateway.handle(
      req('addwebhook', { ...admin, url: 'http://169.254.10.10/x', events: '*', secret: SECRET }, src('127.0.0.1')),
    );
    assert.equal(r.ok, true, r.text);
  } finally {
    await t.stop();
  }
});
