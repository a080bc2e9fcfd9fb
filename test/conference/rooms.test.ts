/**
 * Conference rooms end to end: sipp UACs (digest as for any call) join a room of the B2BUA, with SDP pointing at
 * UDP sockets the test binds itself; the test streams G.711 from them to the ports voxswitch answered (read from
 * confparticipants) and checks what each socket hears: the others, not itself, a join tone; the room limit (486),
 * 488 without PCMU/PCMA, BYE from a participant and disccall (CDR cost 0), unknown rooms routed as before.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { skipWithout } from '../helpers/tools.js';
import { runTool } from '../helpers/processes.js';
import { startCallEnv, SIPP, uacCsv, waitFor, sleep, type CallEnv } from '../calls/helpers.js';
import { writeScenario } from './scenarios.js';
import { decode, encode } from '../../src/sip/conference/g711.js';

let env: CallEnv;
let work: string;
let room: string;
const ids: Record<string, number> = {};
const LOCAL = apiSrc('127.0.0.1');
const api = (e: string, p: Record<string, string> = {}) => env.t.srv.gateway.handle(apiReq(e, p, LOCAL));

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-conf-'));
  env = await startCallEnv();
  // the API's conference commands read the B2BUA of the services: here the test's own
  env.services.calls = env.b2bua;
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    ids[name] = (await env.services.users.create({ username: name, password: `${name}pw` })).id;
  }
  room = (await env.services.numbers.getConfRoom(ids.alice!)).room;
});
after(async () => {
  await env?.stop();
  if (!process.env.CONF_KEEP) rmSync(work, { recursive: true, force: true });
});

interface Peer {
  sock: Socket;
  port: number;
  got: Buffer[];
}

async function peer(): Promise<Peer> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const p: Peer = { sock, port: sock.address().port, got: [] };
  sock.on('message', (m) => p.got.push(m));
  return p;
}

function join_(
  name: string,
  kind: 'hold' | 'leave' | 'refused',
  rtpport: number,
  o: { codecs?: string; status?: number; d?: number } = {},
) {
  const scen = writeScenario(work, kind, o.status ?? 200);
  const inf = uacCsv(work, `${name}-${kind}.csv`, [[name, `${name}pw`, room]]);
  return runTool(
    SIPP,
    [
      `127.0.0.1:${env.udpPort}`,
      '-sf',
      scen,
      '-inf',
      inf,
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-p',
      '0',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-key',
      'rtpport',
      String(rtpport),
      '-key',
      'codecs',
      o.codecs ?? '0 101',
      '-d',
      String(o.d ?? 1000),
      '-trace_err',
      '-error_file',
      join(work, `${name}-${kind}.err`),
    ],
    work,
  );
}

/** Energy of `hz` in linear samples (Goertzel), normalised per sample. */
function toneLevel(pcm: Int16Array, hz: number): number {
  const w = (2 * Math.PI * hz) / 8000;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const x of pcm) {
    const s = x + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return Math.sqrt(s1 * s1 + s2 * s2 - c * s1 * s2) / pcm.length;
}

/** The payloads of the RTP packets received, decoded (µ-law) and joined. */
function audio(got: Buffer[]): Int16Array {
  const frames = got.filter((m) => m.length === 172 && (m[1]! & 0x7f) === 0).map((m) => decode('pcmu', m.subarray(12)));
  const out = new Int16Array(frames.length * 160);
  frames.forEach((f, i) => out.set(f, i * 160));
  return out;
}

/** Sends `frames` RTP packets of µ-law audio (a 1 kHz tone or silence) every 20 ms from `p` to `port`. */
async function stream(p: Peer, port: number, frames: number, hz: number): Promise<void> {
  const ssrc = 0x1234 + p.port;
  for (let i = 0; i < frames; i++) {
    const pcm = new Int16Array(160).map((_, k) =>
      hz ? Math.round(8000 * Math.sin((2 * Math.PI * hz * (i * 160 + k)) / 8000)) : 0,
    );
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = 0;
    h.writeUInt16BE(i, 2);
    h.writeUInt32BE(i * 160, 4);
    h.writeUInt32BE(ssrc, 8);
    p.sock.send(Buffer.concat([h, encode('pcmu', pcm)]), port, '127.0.0.1');
    await sleep(20);
  }
}

const participants = async () => (await api('confparticipants', { room })).rows ?? [];
const cdrsOf = (userId: number) =>
  env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', userId).orderBy('id').execute();

test('two participants: each hears the other (a 1 kHz tone from A reaches B, not A), join tone, limit, disccall', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  env.services.config.persist({ confmaxparticipants: '2' });
  env.services.config.reload();
  const a = await peer();
  const b = await peer();
  const x = await peer();
  const alice = join_('alice', 'hold', a.port);
  await waitFor(participants, (r) => r.length === 1);
  const bob = join_('bob', 'hold', b.port);
  const rows = await waitFor(participants, (r) => r.length === 2);
  assert.equal(rows.length, 2, 'confparticipants lists both');
  const portOf = (u: string) => Number(rows.find((r) => r.user === u)!.port);
  const callOf = (u: string) => String(rows.find((r) => r.user === u)!.callid);
  assert.equal(rows.find((r) => r.user === 'bob')!.codec, 'pcmu');
  // A hears B's join tone (660/880 Hz) before anyone speaks
  await sleep(400);
  const joinTone = audio(a.got);
  assert.ok(toneLevel(joinTone, 880) > 300, `join tone at A: ${toneLevel(joinTone, 880)}`);
  a.got.length = 0;
  b.got.length = 0;
  // A speaks a 1 kHz tone, B sends silence (both latch)
  await Promise.all([stream(a, portOf('alice'), 50, 1000), stream(b, portOf('bob'), 50, 0)]);
  await sleep(100);
  const atB = audio(b.got.slice(10));
  const atA = audio(a.got.slice(10));
  assert.ok(atB.length >= 160 * 20, `B received ${b.got.length} packets`);
  assert.ok(toneLevel(atB, 1000) > 1000, `A's tone at B: ${toneLevel(atB, 1000)}`);
  assert.ok(toneLevel(atA, 1000) < 50, `A's own tone back at A: ${toneLevel(atA, 1000)}`);
  // RTP of the mixer: one SSRC per stream, sequence numbers in order, timestamps +160
  const seqs = b.got.slice(-10).map((m) => m.readUInt16BE(2));
  const tss = b.got.slice(-10).map((m) => m.readUInt32BE(4));
  for (let i = 1; i < seqs.length; i++) {
    assert.equal((seqs[i]! - seqs[i - 1]! + 65536) % 65536, 1);
    assert.equal((tss[i]! - tss[i - 1]! + 2 ** 32) % 2 ** 32, 160);
  }
  assert.equal(new Set(b.got.map((m) => m.readUInt32BE(8))).size, 1);
  const counted = await participants();
  assert.ok(Number(counted.find((r) => r.user === 'alice')!.packetsin) >= 45, 'packets in counted');
  // the room is full: the third caller gets 486
  const carol = await join_('carol', 'refused', x.port, { status: 486 });
  assert.equal(carol.code, 0, `carol refused with 486: ${carol.out.slice(-800)}`);
  // quickstat lists the participants, disccall ends bob (BYE from us), his CDR costs 0
  const q = await api('quickstat');
  assert.ok(
    (q.rows ?? []).some((r) => r.callid === callOf('bob') && r.route === `conf:${room}`),
    q.text,
  );
  const rooms = await api('confrooms');
  assert.equal(rooms.fields?.participants, 2, rooms.text);
  a.got.length = 0;
  const d = await api('disccall', { dbcallid: callOf('bob') });
  assert.equal(d.ok, true, d.text);
  const rb = await bob;
  assert.equal(rb.code, 0, `bob got our BYE: ${rb.out.slice(-800)}`);
  const bobCdr = (
    await waitFor(
      () => cdrsOf(ids.bob!),
      (r) => r.length > 0,
    )
  ).at(-1)!;
  assert.equal(bobCdr.cost, 0);
  assert.equal(bobCdr.callee, room);
  assert.match(bobCdr.reason, /disconnected/);
  // A hears the leave tone (880 then 660 Hz)
  await sleep(300);
  assert.ok(toneLevel(audio(a.got), 660) > 300, `leave tone at A: ${toneLevel(audio(a.got), 660)}`);
  await api('disccall', { dbcallid: callOf('alice') });
  assert.equal((await alice).code, 0);
  for (const p of [a, b, x]) p.sock.close();
  env.services.config.persist({ confmaxparticipants: '20' });
  env.services.config.reload();
});

test('PCMA chosen when the offer lists it first; disccall ends the leg, CDR cost 0', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const p = await peer();
  const before = (await cdrsOf(ids.carol!)).length;
  const run = join_('carol', 'hold', p.port, { codecs: '8 0 101' });
  const rows = await waitFor(participants, (r) => r.length === 1);
  assert.equal(rows[0]!.codec, 'pcma');
  await sleep(600);
  assert.ok(p.got.length > 10 && p.got.every((m) => (m[1]! & 0x7f) === 8), 'PCMA frames sent to the participant');
  assert.equal((await api('disccall', { dbcallid: String(rows[0]!.callid) })).ok, true);
  const r = await run;
  assert.equal(r.code, 0, r.out.slice(-300));
  const cdrs = await waitFor(
    () => cdrsOf(ids.carol!),
    (x) => x.length > before,
  );
  assert.equal(cdrs.at(-1)!.cost, 0);
  assert.equal((await participants()).length, 0);
  p.sock.close();
});

test('488 for an offer without PCMU/PCMA; a number that is no room is routed as before', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const p = await peer();
  const r = await join_('dave', 'refused', p.port, { codecs: '18 101', status: 488 });
  assert.equal(r.code, 0, r.out.slice(-800));
  assert.equal((await participants()).length, 0);
  const other = await env.services.numbers.confRoomOwner('99999999');
  assert.equal(other, undefined);
  p.sock.close();
});

test("a participant's own BYE: 200, it leaves the room (confparticipants), the other stays", async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const a = await peer();
  const b = await peer();
  const before = (await cdrsOf(ids.dave!)).length;
  const alice = join_('alice', 'hold', a.port);
  await waitFor(participants, (r) => r.length === 1);
  const dave = await join_('dave', 'leave', b.port, { d: 1500 });
  assert.equal(dave.code, 0, `dave's BYE answered 200: ${dave.out.slice(-800)}`);
  const rows = await waitFor(participants, (r) => r.length === 1);
  assert.deepEqual(
    rows.map((r) => r.user),
    ['alice'],
  );
  const cdrs = await waitFor(
    () => cdrsOf(ids.dave!),
    (x) => x.length > before,
  );
  assert.equal(cdrs.at(-1)!.cost, 0);
  assert.match(cdrs.at(-1)!.reason, /left conference/);
  assert.equal((await api('disccall', { dbcallid: String(rows[0]!.callid) })).ok, true);
  assert.equal((await alice).code, 0);
  for (const p of [a, b]) p.sock.close();
});
