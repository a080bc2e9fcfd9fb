/**
 * Two nodes on one PostgreSQL and one Redis (a key prefix of this run): `info` and `quickstat` answer this node, every
 * live node and the totals (a node that stops announcing drops out after its expiry, a clean stop at once); a PUBLISH
 * on node A is seen by a SUBSCRIBE/NOTIFY and presence_get on node B, and refreshed through B with A's entity tag.
 * Redis or PostgreSQL missing: skipped with the reason, a failure under CI=true.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freshPgDatabase } from '../helpers/pg.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../state/redis.js';
import { startNode, headerOf, statusOf, Phone, type Node } from './helpers.js';
import { encode } from '../../src/api/encode/index.js';

const missing = await redisMissing();
const pgdb = missing ? undefined : await freshPgDatabase();
const skip = missing ?? (pgdb && 'skip' in pgdb ? pgdb.skip : false);

const pidf = (note: string, basic = 'open') =>
  '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@127.0.0.1">' +
  `<tuple id="a"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;

describe('several nodes as one switch: counters and published presence', { skip, timeout: 60_000 }, () => {
  const prefix = testPrefix();
  let a: Node;
  let b: Node;
  before(async () => {
    const db = pgdb as { url: string };
    const common = { dburl: db.url, redisurl: REDIS_URL, usesip: 'true' };
    a = await startNode({ overrides: { ...common, nodeid: 'node-a' }, prefix, nodeStatsMs: 200 });
    b = await startNode({ overrides: { ...common, nodeid: 'node-b' }, prefix, keyFrom: a.dataDir, nodeStatsMs: 200 });
    for (const [u, pw] of [
      ['alice', 'alicepw'],
      ['bob', 'bobpw'],
    ])
      assert.ok((await a.api('newuseri', { u_username: u!, u_password: pw!, u_credit: '5' })).ok);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    if (pgdb && 'drop' in pgdb) await pgdb.drop();
    await dropPrefix(prefix);
  });

  test('info and quickstat: this node, every live node, the totals; a silent node drops out', async () => {
    const alice = await new Phone('alice', 'alicepw').open();
    try {
      const reg = await alice.request(a.sipPort, 'REGISTER', 'sip:127.0.0.1', { headers: ['Expires: 300'] });
      assert.equal(statusOf(reg), 200, reg);
      for (let i = 0; i < 3; i++) await b.api('apitest');
      // both nodes listed (after one heartbeat of each), with A's registration and B's API requests
      await until(
        async () => {
          const f = (await b.api('info')).fields!;
          return f.nodes === 2 && f.total_registrations === 1;
        },
        5000,
        'two nodes with one registration in info on B',
      );
      const info = await b.api('info');
      assert.equal(info.ok, true, info.text);
      assert.equal(info.fields!.node_id, 'node-b');
      assert.equal(info.fields!.registrations, 0, 'the phone is held by A');
      assert.ok(Number(info.fields!.api_requests) >= 3);
      assert.ok(Number(info.fields!.total_api_requests) >= Number(info.fields!.api_requests));
      assert.equal(info.fields!.pid, process.pid, 'the existing fields stay');
      assert.deepEqual(
        info.rows!.map((r) => [r.id, r.registrations]),
        [
          ['node-a', 1],
          ['node-b', 0],
        ],
      );
      // every format carries the new fields and rows
      const json = JSON.parse(encode(info, { format: 'json', strict: false }).body);
      assert.equal(json.fields.total_registrations, 1);
      assert.equal(json.rows.length, 2);
      const xml = encode(info, { format: 'xml', strict: false }).body;
      assert.match(xml, /<total_registrations>1<\/total_registrations>/);
      assert.match(xml, /<rows count="2">/);
      assert.match(encode(info, { format: 'text', strict: false }).body, /total_registrations: 1[\s\S]*node-a\tnode-a/);

      const qs = await a.api('quickstat');
      assert.equal(qs.ok, true, qs.text);
      assert.equal(qs.fields!.livecalls, 0, 'the existing fields stay');
      assert.equal(qs.fields!.node_id, 'node-a');
      assert.equal(qs.fields!.nodes, 2);
      assert.match(String(qs.fields!['node.node-b']), /registrations=0 live_calls=0/);
      assert.match(qs.text, /^livecalls=0 connected=0/);
      assert.match(qs.text, /node\.node-a: .*registrations=1/);

      // a node that stopped announcing (no clean stop) drops out when its announcement expires
      const ghost = { ...(await a.srv.services.nodeStats!.view()).self, id: 'node-ghost', node: 'node-ghost' };
      await a.srv.services.state.nodes.announce({ ...ghost, at: Date.now() }, 600);
      assert.equal((await b.api('info')).fields!.nodes, 3);
      await until(async () => (await b.api('info')).fields!.nodes === 2, 3000, 'the ghost gone after its expiry');
    } finally {
      alice.close();
    }
  });

  test('a PUBLISH on A is seen by a SUBSCRIBE/NOTIFY and presence_get on B; a refresh through B keeps the tag', async () => {
    const alice = await new Phone('alice', 'alicepw').open();
    const bob = await new Phone('bob', 'bobpw').open();
    try {
      const pubHeaders = ['Event: presence', 'Expires: 120', 'Content-Type: application/pidf+xml'];
      const p1 = await alice.request(a.sipPort, 'PUBLISH', 'sip:alice@127.0.0.1', {
        headers: pubHeaders,
        body: pidf('In a meeting'),
      });
      assert.equal(statusOf(p1), 200, p1);
      const etag = headerOf(p1, 'SIP-ETag');
      assert.ok(etag);

      // bob subscribes on B: the first NOTIFY carries what alice published on A
      const mark = bob.inbox.length;
      const sub = await bob.request(b.sipPort, 'SUBSCRIBE', 'sip:alice@127.0.0.1', {
        headers: ['Event: presence', 'Expires: 120', 'Accept: application/pidf+xml'],
      });
      assert.equal(statusOf(sub), 200, sub);
      const n1 = await bob.waitFor(mark, (m) => m.startsWith('NOTIFY ') && /In a meeting/.test(m), 'NOTIFY on B');
      assert.match(n1, /<basic>open<\/basic>/);
      assert.match((await b.api('presence_get', { userusername: 'alice' })).text, /In a meeting/);

      // a refresh with A's entity tag sent to B is accepted there, and B's watcher hears the new note
      const mark2 = bob.inbox.length;
      const p2 = await alice.request(b.sipPort, 'PUBLISH', 'sip:alice@127.0.0.1', {
        headers: [...pubHeaders, `SIP-If-Match: ${etag}`],
        body: pidf('Out for lunch'),
      });
      assert.equal(statusOf(p2), 200, p2);
      await bob.waitFor(mark2, (m) => m.startsWith('NOTIFY ') && /Out for lunch/.test(m), 'NOTIFY of the refresh');
      // the old tag is stale on A too: the publication was replaced through B
      const stale = await alice.request(a.sipPort, 'PUBLISH', 'sip:alice@127.0.0.1', {
        headers: ['Event: presence', 'Expires: 120', `SIP-If-Match: ${etag}`],
      });
      assert.equal(statusOf(stale), 412, stale);
      await until(
        async () => /Out for lunch/.test((await a.api('presence_get', { userusername: 'alice' })).text),
        3000,
        'presence_get on A',
      );
    } finally {
      alice.close();
      bob.close();
    }
  });
});
