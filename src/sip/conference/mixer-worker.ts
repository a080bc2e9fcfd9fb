/**
 * The conference mixer, a worker thread (node:worker_threads) owning every room's RTP sockets. The main thread
 * reserves each participant's RTP/RTCP port pair from the RTP relay's pool and sends it here with the join; this
 * worker binds the sockets on those ports (RTCP is read and dropped).
 *
 * Every 20 ms (a drift-free schedule), per room: each participant's oldest queued frame (a jitter queue of at most
 * 3 frames; none → silence) is taken, the frames are mixed (./mix.ts: each hears the others, not itself, plus the
 * join/leave tones), encoded in the participant's codec and sent as RTP with its own SSRC, sequence number and
 * timestamp (+160 per frame). A participant's RTP goes to the address of its SDP until its first packet arrives,
 * then to that packet's source (latching, as the relay); later packets from elsewhere are dropped.
 * A tick that starts more than a frame late or whose work takes longer than a frame counts as an underrun.
 *
 * Call listening (src/sip/monitor): a listener's room `monitor:<id>` holds the listener (sockets bound here, its own
 * RTP read and dropped) and two feeds without sockets, the two sides of the listened call, whose RTP packets the main
 * thread's relay taps post here (FeedMsg, PCMU or PCMA by their payload type); the listener hears the feeds' sum,
 * the feeds' outputs are not sent anywhere, and such a room has no tones.
 */
import { parentPort } from 'node:worker_threads';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { decode, encode, PAYLOAD_TYPE, type G711 } from './g711.js';
import { FRAME_SAMPLES, JOIN_TONE, LEAVE_TONE, mixFrames } from './mix.js';
import type { FeedMsg, FromWorker, JoinMsg, MixerStats, MonitorMsg, ToWorker } from './protocol.js';

const FRAME_MS = 20;
const QUEUE = 3;
const SILENCE = new Int16Array(FRAME_SAMPLES);

interface Participant {
  id: string;
  room: Room;
  codec: G711;
  pt: number;
  port: number;
  /** none for a listened call's feed (its packets come from the main thread) */
  sock?: Socket;
  rtcp?: Socket;
  /** a listener: what it sends is not mixed */
  muted: boolean;
  remote: { host: string; port: number };
  latched: boolean;
  queue: Int16Array[];
  ssrc: number;
  seq: number;
  ts: number;
  packetsIn: number;
  packetsOut: number;
  out: Buffer;
}

interface Tone {
  samples: Int16Array;
  at: number;
  /** the participant who does not hear it (the one joining or leaving) */
  except: string;
}

interface Room {
  name: string;
  members: Participant[];
  tones: Tone[];
  outs: Int16Array[];
  /** a listener's room: the feeds of the listened call's two sides */
  feeds?: Record<'a' | 'b', Participant>;
}

const rooms = new Map<string, Room>();
const byId = new Map<string, Participant>();
let ticks = 0;
let underruns = 0;
let maxTickMs = 0;

function bind(port: number, addr: string): Promise<Socket> {
  const s = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind({ port, address: addr, exclusive: true }, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

function close(s: Socket): void {
  try {
    s.close();
  } catch {
    /* closed */
  }
}

/** The payload of an RTP packet of `pt` (after CSRCs and a header extension), or undefined. */
function payloadOf(msg: Buffer, pt: number): Buffer | undefined {
  if (msg.length < 12 || msg[0]! >> 6 !== 2 || (msg[1]! & 0x7f) !== pt) return undefined;
  let off = 12 + (msg[0]! & 0x0f) * 4;
  if (msg[0]! & 0x10) {
    if (msg.length < off + 4) return undefined;
    off += 4 + msg.readUInt16BE(off + 2) * 4;
  }
  let end = msg.length;
  if (msg[0]! & 0x20) end -= msg[end - 1]!;
  return off < end ? msg.subarray(off, end) : undefined;
}

function onRtp(p: Participant, msg: Buffer, rinfo: RemoteInfo): void {
  if (p.latched) {
    if (rinfo.address !== p.remote.host || rinfo.port !== p.remote.port) return;
  } else {
    p.remote = { host: rinfo.address, port: rinfo.port };
    p.latched = true;
  }
  p.packetsIn++;
  if (!p.muted) queueFrame(p, p.codec, payloadOf(msg, p.pt));
}

/** Queues one 20 ms frame (at most QUEUE, the oldest dropped); other payloads are ignored. */
function queueFrame(p: Participant, codec: G711, payload: Buffer | undefined): void {
  if (!payload || payload.length !== FRAME_SAMPLES) return; // telephone-events, comfort noise, other ptimes
  if (p.queue.length >= QUEUE) p.queue.shift();
  p.queue.push(decode(codec, payload));
}

/** Binds a participant's RTP and RTCP sockets (RTCP read and dropped). */
async function bindPair(port: number, addr: string): Promise<{ sock: Socket; rtcp: Socket }> {
  const sock = await bind(port, addr);
  try {
    const rtcp = await bind(port + 1, addr);
    rtcp.on('message', () => undefined);
    return { sock, rtcp };
  } catch (e) {
    close(sock);
    throw e;
  }
}

function member(id: string, room: Room, codec: G711, port: number, remote: Participant['remote']): Participant {
  return {
    id,
    room,
    codec,
    pt: PAYLOAD_TYPE[codec],
    port,
    muted: false,
    remote,
    latched: false,
    queue: [],
    ssrc: randomInt(2 ** 32 - 1),
    seq: randomInt(65536),
    ts: randomInt(2 ** 32 - 1),
    packetsIn: 0,
    packetsOut: 0,
    out: Buffer.alloc(12 + FRAME_SAMPLES),
  };
}

async function monitor(m: MonitorMsg): Promise<void> {
  if (byId.has(m.id)) throw new Error(`listener ${m.id} already started`);
  const { sock, rtcp } = await bindPair(m.port, m.bindAddr);
  const room: Room = { name: `monitor:${m.id}`, members: [], tones: [], outs: [] };
  const none = { host: '', port: 0 };
  room.feeds = { a: member(`${m.id}/a`, room, 'pcmu', 0, none), b: member(`${m.id}/b`, room, 'pcmu', 0, none) };
  const p = Object.assign(member(m.id, room, m.codec, m.port, m.remote), { sock, rtcp, muted: true });
  sock.on('message', (msg, rinfo) => onRtp(p, msg, rinfo));
  room.members = [room.feeds.a, room.feeds.b, p];
  rooms.set(room.name, room);
  byId.set(p.id, p);
}

function feed(m: FeedMsg): void {
  const p = rooms.get(`monitor:${m.id}`)?.feeds?.[m.side];
  if (!p) return; // the listener left meanwhile
  const msg = Buffer.from(m.packet.buffer, m.packet.byteOffset, m.packet.byteLength);
  const pt = msg.length > 1 ? msg[1]! & 0x7f : -1;
  const codec: G711 | undefined = pt === PAYLOAD_TYPE.pcmu ? 'pcmu' : pt === PAYLOAD_TYPE.pcma ? 'pcma' : undefined;
  p.packetsIn++;
  if (codec) queueFrame(p, codec, payloadOf(msg, pt));
}

async function join(m: JoinMsg): Promise<void> {
  if (byId.has(m.id)) throw new Error(`participant ${m.id} already joined`);
  const { sock, rtcp } = await bindPair(m.port, m.bindAddr);
  let room = rooms.get(m.room);
  if (!room) rooms.set(m.room, (room = { name: m.room, members: [], tones: [], outs: [] }));
  const p = Object.assign(member(m.id, room, m.codec, m.port, m.remote), { sock, rtcp });
  sock.on('message', (msg, rinfo) => onRtp(p, msg, rinfo));
  room.members.push(p);
  if (room.members.length > 1) room.tones.push({ samples: JOIN_TONE, at: 0, except: p.id });
  byId.set(p.id, p);
}

function leave(id: string): void {
  const p = byId.get(id);
  if (!p) return;
  byId.delete(id);
  if (p.sock) close(p.sock);
  if (p.rtcp) close(p.rtcp);
  const room = p.room;
  if (room.feeds) return void rooms.delete(room.name); // a listener's room ends with it
  room.members = room.members.filter((x) => x !== p);
  if (!room.members.length) rooms.delete(room.name);
  else room.tones.push({ samples: LEAVE_TONE, at: 0, except: id });
}

function send(p: Participant, pcm: Int16Array): void {
  if (!p.sock) return; // a listened call's feed: its mix goes nowhere
  const b = p.out;
  b[0] = 0x80;
  b[1] = p.pt;
  b.writeUInt16BE(p.seq, 2);
  b.writeUInt32BE(p.ts >>> 0, 4);
  b.writeUInt32BE(p.ssrc >>> 0, 8);
  encode(p.codec, pcm, b.subarray(12));
  p.seq = (p.seq + 1) & 0xffff;
  p.ts = (p.ts + FRAME_SAMPLES) >>> 0;
  p.packetsOut++;
  p.sock.send(b, p.remote.port, p.remote.host);
}

function mixRoom(room: Room): void {
  const members = room.members;
  const frames = members.map((p) => p.queue.shift() ?? SILENCE);
  let extra: Array<Int16Array | undefined> = [];
  if (room.tones.length) {
    extra = members.map(() => undefined);
    for (const tone of room.tones) {
      const part = tone.samples.subarray(tone.at, tone.at + FRAME_SAMPLES);
      tone.at += FRAME_SAMPLES;
      members.forEach((p, i) => {
        if (p.id === tone.except) return;
        const e = extra[i] ?? (extra[i] = new Int16Array(FRAME_SAMPLES));
        for (let k = 0; k < part.length; k++) e[k]! += part[k]!;
      });
    }
    room.tones = room.tones.filter((t) => t.at < t.samples.length);
  }
  const outs = mixFrames(frames, extra, room.outs);
  members.forEach((p, i) => send(p, outs[i]!));
}

const started = performance.now();
function tick(): void {
  const now = performance.now();
  const due = started + ticks * FRAME_MS;
  ticks++;
  for (const room of rooms.values()) mixRoom(room);
  const work = performance.now() - now;
  if (work > maxTickMs) maxTickMs = work;
  if (rooms.size && (now - due > FRAME_MS || work > FRAME_MS)) underruns++;
  // the next tick on the 20 ms grid; ticks missed entirely are skipped (counted as underruns)
  let next = started + ticks * FRAME_MS;
  const after = performance.now();
  while (next < after - FRAME_MS) {
    ticks++;
    if (rooms.size) underruns++;
    next += FRAME_MS;
  }
  setTimeout(tick, Math.max(0, next - after));
}
setTimeout(tick, FRAME_MS);

function stats(): MixerStats {
  const feeds = [...rooms.values()].flatMap((r) => (r.feeds ? [r.feeds.a, r.feeds.b] : []));
  return {
    participants: [...byId.values(), ...feeds].map((p) => ({
      id: p.id,
      room: p.room.name,
      codec: p.codec,
      port: p.port,
      packetsIn: p.packetsIn,
      packetsOut: p.packetsOut,
    })),
    ticks,
    underruns,
    maxTickMs,
  };
}

const port = parentPort!;
const reply = (m: FromWorker) => port.postMessage(m);
port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'join':
      join(m).then(
        () => reply({ t: 'ok', rid: m.rid }),
        (e: Error) => reply({ t: 'error', rid: m.rid, error: String(e?.message ?? e) }),
      );
      return;
    case 'monitor':
      monitor(m).then(
        () => reply({ t: 'ok', rid: m.rid }),
        (e: Error) => reply({ t: 'error', rid: m.rid, error: String(e?.message ?? e) }),
      );
      return;
    case 'feed':
      return feed(m);
    case 'leave':
      leave(m.id);
      return reply({ t: 'ok', rid: m.rid });
    case 'stats':
      return reply({ t: 'stats', rid: m.rid, stats: stats() });
    case 'close':
      for (const id of [...byId.keys()]) leave(id);
      reply({ t: 'ok', rid: m.rid });
      process.exit(0);
  }
});
