/**
 * Two voxswitch nodes on one PostgreSQL database and one Redis (a key prefix of this run) behave as one switch: an
 * API salt used on node A is refused on B; usage limits add up across the nodes; a phone registered on A (REGISTER
 * with digest over UDP) is online in status/verifyuser/reguser on B, B can send to it, and a nonce A issued is
 * accepted on B once per nonce count. Redis or PostgreSQL missing: skipped with the reason, a failure under CI=true.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, API_KEY, TEST_OVERRIDES, authMd5, freshSalt } from '../helpers/server.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { req, src } from '../helpers/source.js';
import { REDIS_URL, redisMissing, testPrefix, dropPrefix, until } from '../state/redis.js';
import { authorize } from '../sip/services/fake.js';

const LOCAL = src('127.0.0.1');

interface Node {
  srv: RunningServer;
  dataDir: string;
}

/** One node: the test server's options, its own data dir, the state under this run's key prefix. */
async function startNode(dataDir: string, overrides: Record<string, string>, statePrefix: string): Promise<Node> {
  process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const srv = await startServer({
    dataDir,
    overrides: { ...TEST_OVERRIDES, ...overrides },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
    statePrefix,
  });
  return { srv, dataDir };
}
const missing = await redisMissing();
const pgdb = missing ? undefined : await freshPgDatabase();
const skip = missing ?? (pgdb && 'skip' in pgdb ? pgdb.skip : false);

/** A UDP phone: sends requests to a node and collects what arrives. */
class Phone {
  readonly sock: Socket = createSocket('udp4');
  readonly inbox: string[] = [];
  port = 0;
  private seq = 0;
  async open(): Promise<void> {
    this.sock.on('message', (m) => this.inbox.push(m.toString('utf8')));
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.port = this.sock.address().port;
  }
  close(): void {
    this.sock.close();
  }
  send(text: string, port: number): void {
    this.sock.send(text, port, '127.0.0.1');
  }
  /** Waits for a message arriving after `from` (an inbox index) that matches. */
  async waitFor(from: number, match: (m: string) => boolean, what: string): Promise<string> {
    await until(() => this.inbox.slice(from).some(match), 5000, what);
    return this.inbox.slice(from).find(match)!;
  }
  /** Sends a REGISTER and waits for its final response (the message text). */
  async register(nodePort: number, user: string, callId: string, cseq: number, auth?: string, expires = 300) {
    const branch = `z9hG4bK${Date.now().toString(36)}${++this.seq}`;
    const lines = [
      `REGISTER sip:127.0.0.1 SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@127.0.0.1>;tag=f${this.seq}`,
      `To: <sip:${user}@127.0.0.1>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${user}@127.0.0.1:${this.port}>`,
      `Expires: ${expires}`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Content-Length: 0',
      '',
      '',
    ];
    const before = this.inbox.length;
    this.sock.send(lines.join('\r\n'), nodePort, '127.0.0.1');
    await until(() => this.inbox.slice(before).some((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && m.includes(branch)));
    return this.inbox.slice(before).find((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && m.includes(branch))!;
  }
}

const challengeOf = (res: string, name = 'WWW-Authenticate') =>
  new RegExp(`^${name}: (.*)$`, 'im').exec(res)![1]!.trim();
const headerOf = (m: string, name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(m)?.[1]?.trim() ?? '';

/** A response to a request text: its Via, From, To (with a tag), Call-ID and CSeq copied. */
function answer(reqText: string, status: string): string {
  const vias = reqText.split('\r\n').filter((l) => /^Via:/i.test(l));
  return [
    `SIP/2.0 ${status}`,
    ...vias,
    `From: ${headerOf(reqText, 'From')}`,
    `To: ${headerOf(reqText, 'To')};tag=callee1`,
    `Call-ID: ${headerOf(reqText, 'Call-ID')}`,
    `CSeq: ${headerOf(reqText, 'CSeq')}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function invite(from: Phone, user: string, to: string, callId: string, cseq: number, auth?: string): string {
  const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n`;
  return [
    `INVITE sip:${to}@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${from.port};branch=z9hG4bKinv${cseq}${callId};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@127.0.0.1>;tag=caller1`,
    `To: <sip:${to}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} INVITE`,
    `Contact: <sip:${user}@127.0.0.1:${from.port}>`,
    ...(auth ? [`Proxy-Authorization: ${auth}`] : []),
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n');
}

/** The ACK of a non-2xx final response (same branch as the INVITE). */
function ackFor(inv: string, res: string): string {
  const via = inv.split('\r\n').find((l) => /^Via:/i.test(l))!;
  return [
    `ACK ${inv.split(' ')[1]} SIP/2.0`,
    via,
    'Max-Forwards: 70',
    `From: ${headerOf(inv, 'From')}`,
    `To: ${headerOf(res, 'To')}`,
    `Call-ID: ${headerOf(inv, 'Call-ID')}`,
    `CSeq: ${headerOf(inv, 'CSeq').split(' ')[0]} ACK`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}
const statusOf = (res: string) => Number(res.slice(8, 11));

describe('two nodes on one PostgreSQL and one Redis', { skip, timeout: 60_000 }, () => {
  const prefix = testPrefix();
  let a: Node;
  let b: Node;
  let dirA: string;
  let dirB: string;
  let phone: Phone;
  const sipPort = (t: Node) => t.srv.services.listeners.find((l) => l.kind === 'sip udp')!.port;
  const on = (t: Node, entry: string, p: Record<string, string>, s = src('203.0.113.9')) =>
    t.srv.gateway.handle(req(entry, p, s));

  before(async () => {
    const db = pgdb as { url: string };
    const common = { dburl: db.url, redisurl: REDIS_URL, usesip: 'true', authfailban: '0' };
    dirA = mkdtempSync(join(tmpdir(), 'voxswitch-nodea-'));
    a = await startNode(dirA, { ...common, nodeid: 'node-a' }, prefix);
    // the nodes of one switch share the data dir key (stored passwords, the digest nonce secret)
    dirB = mkdtempSync(join(tmpdir(), 'voxswitch-nodeb-'));
    copyFileSync(join(a.dataDir, 'server.key'), join(dirB, 'server.key'));
    b = await startNode(dirB, { ...common, nodeid: 'node-b' }, prefix);
    assert.ok((await on(a, 'newuseri', { u_username: 'alice', u_password: 'alicepw', u_credit: '5' }, LOCAL)).ok);
    phone = new Phone();
    await phone.open();
  });
  after(async () => {
    phone?.close();
    await a?.srv.stop();
    await b?.srv.stop();
    for (const d of [dirA, dirB]) if (d) rmSync(d, { recursive: true, force: true });
    if (pgdb && 'drop' in pgdb) await pgdb.drop();
    await dropPrefix(prefix);
  });

  test('an API salt used on node A is refused on node B', async () => {
    const salt = freshSalt();
    const p = { authkey: API_KEY, authid: 'alice', authmd5: authMd5('alice', 'alicepw', salt), authsalt: salt };
    const first = await on(a, 'balance', p);
    assert.equal(first.ok, true, first.text);
    const replay = await on(b, 'balance', p);
    assert.equal(replay.ok, false);
    assert.match(replay.text, /authsalt already used/);
  });

  test('usage limits add up across the nodes', async () => {
    for (const t of [a, b]) t.srv.services.config.persist({ apilimitip: '4' });
    try {
      const s = src('203.0.113.77');
      const results = await Promise.all(Array.from({ length: 8 }, (_v, i) => on(i % 2 ? a : b, 'apitest', {}, s)));
      assert.equal(results.filter((r) => r.ok).length, 4, 'four requests of the whole switch per second');
      assert.match(results.find((r) => !r.ok)!.text, /usage limit for 203\.0\.113\.77/);
    } finally {
      for (const t of [a, b]) t.srv.services.config.persist({ apilimitip: '200' });
    }
  });

  test('a phone registered on A is online on B; a nonce A issued is accepted on B once per count', async () => {
    const callId = `nodes-${Date.now()}`;
    const ch = await phone.register(sipPort(a), 'alice', callId, 1);
    assert.equal(statusOf(ch), 401);
    const challenge = challengeOf(ch);
    const ok = await phone.register(
      sipPort(a),
      'alice',
      callId,
      2,
      authorize(challenge, 'alice', 'alicepw', 'REGISTER', 'sip:127.0.0.1', 1),
    );
    assert.equal(statusOf(ok), 200, ok);

    await until(() => b.srv.services.sip!.location.isOnline('alice'), 3000, 'alice online on B');
    const v = await on(b, 'verifyuser', { userusername: 'alice' }, LOCAL);
    assert.equal(v.ok, true, v.text);
    assert.match(v.text, /2/);
    const rows = b.srv.services.sip!.endpoints('alice');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.contact, `sip:alice@127.0.0.1:${phone.port}`);
    // B sends to the phone over UDP straight to its address: the binding is in B's look-up
    const reach = b.srv.services.sip!.location.lookup('alice');
    assert.equal(reach.length, 1);
    assert.equal(reach[0]!.node, 'node-a');
    assert.equal(reach[0]!.srcPort, phone.port);

    // the refresh goes to B with the nonce A issued (same secret): accepted, and the same count again is a replay
    const auth2 = authorize(challenge, 'alice', 'alicepw', 'REGISTER', 'sip:127.0.0.1', 2);
    assert.equal(statusOf(await phone.register(sipPort(b), 'alice', callId, 3, auth2)), 200);
    assert.equal(statusOf(await phone.register(sipPort(a), 'alice', callId, 4, auth2)), 403);
    const onA = a.srv.services.sip!.location.all('alice');
    assert.equal(onA.length, 1);
    assert.equal(onA[0]!.node, 'node-b', 'the refresh through B made B the owner');
    assert.equal(onA[0]!.cseq, 3);

    // an out-of-order CSeq is refused whichever node gets it
    const auth3 = authorize(challenge, 'alice', 'alicepw', 'REGISTER', 'sip:127.0.0.1', 3);
    assert.equal(statusOf(await phone.register(sipPort(a), 'alice', callId, 3, auth3)), 500);

    // unregistering on B takes the phone offline on A
    const auth4 = authorize(challenge, 'alice', 'alicepw', 'REGISTER', 'sip:127.0.0.1', 4);
    assert.equal(statusOf(await phone.register(sipPort(b), 'alice', callId, 10, auth4, 0)), 200);
    await until(() => !a.srv.services.sip!.location.isOnline('alice'), 3000, 'alice offline on A');
    assert.deepEqual(await b.srv.services.sip!.status('alice'), 1);
  });

  test('call states and presence strings of one node are seen on the other', async () => {
    a.srv.services.sip!.setCallState('alice', 4);
    await until(async () => (await b.srv.services.sip!.status('alice')) === 4, 3000, 'speaking on B');
    a.srv.services.sip!.setCallState('alice', null);
    await until(async () => (await b.srv.services.sip!.status('alice')) !== 4, 3000, 'the call over on B');
    const p = { authkey: API_KEY, authid: 'alice', authpwd: 'alicepw', pstatus: 'Away' };
    assert.equal((await on(a, 'presence_set', p)).ok, true);
    await until(
      async () => /Away/.test((await on(b, 'presence_get', { userusername: 'alice' }, LOCAL)).text),
      3000,
      'presence string on B',
    );
  });

  test('a phone registered on A is called from B: B sends the INVITE straight to its UDP address', async () => {
    assert.ok((await on(a, 'newuseri', { u_username: 'bob', u_password: 'bobpw', u_credit: '5' }, LOCAL)).ok);
    const callId = `nodes-call-${Date.now()}`;
    const ch = await phone.register(sipPort(a), 'alice', callId, 1);
    const auth = authorize(challengeOf(ch), 'alice', 'alicepw', 'REGISTER', 'sip:127.0.0.1', 1);
    assert.equal(statusOf(await phone.register(sipPort(a), 'alice', callId, 2, auth)), 200);
    await until(() => b.srv.services.sip!.location.lookup('alice').length === 1, 3000, 'alice reachable from B');

    const caller = new Phone();
    await caller.open();
    try {
      const cid = `inv-${Date.now()}`;
      const isFinal = (m: string) => /^SIP\/2\.0 [3-6]\d\d/.test(m);
      let mark = caller.inbox.length;
      const first = invite(caller, 'bob', 'alice', cid, 1);
      caller.send(first, sipPort(b));
      const c407 = await caller.waitFor(mark, isFinal, '407 from B');
      assert.equal(statusOf(c407), 407, c407);
      caller.send(ackFor(first, c407), sipPort(b));
      const pa = authorize(challengeOf(c407, 'Proxy-Authenticate'), 'bob', 'bobpw', 'INVITE', 'sip:alice@127.0.0.1', 1);
      mark = caller.inbox.length;
      const phoneMark = phone.inbox.length;
      const second = invite(caller, 'bob', 'alice', cid, 2, pa);
      caller.send(second, sipPort(b));
      const inv = await phone.waitFor(phoneMark, (m) => m.startsWith('INVITE '), 'the INVITE from B at the phone');
      assert.match(inv, new RegExp(`^INVITE sip:alice@127\\.0\\.0\\.1:${phone.port}`));
      // it came from node B's SIP port, not A's
      const via = headerOf(inv, 'Via');
      assert.match(via, new RegExp(`127\\.0\\.0\\.1:${sipPort(b)}`));
      phone.send(answer(inv, '486 Busy Here'), sipPort(b));
      const fin = await caller.waitFor(mark, isFinal, 'the final answer at the caller');
      assert.equal(statusOf(fin), 486, fin);
      caller.send(ackFor(second, fin), sipPort(b));
    } finally {
      caller.close();
    }
  });
});
