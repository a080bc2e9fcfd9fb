/**
 * Conference mixing in real time: ROOMS rooms of PARTICIPANTS each joined to the mixer worker (one thread, one
 * core), every participant a UDP socket of this process sending a G.711 frame every 20 ms; after SECONDS the
 * worker's counters tell the ticks run, the ticks that ran late or took longer than a frame (underruns) and the
 * longest tick. The senders share the machine with the worker: the figure is a lower bound.
 *   npm run bench:conference -- [rooms=20] [participants=5] [seconds=5] [baseport=16000]
 */
import { createSocket, type Socket } from 'node:dgram';
import { ConferenceMixer } from '../../src/sip/conference/mixer.js';
import { encode } from '../../src/sip/conference/g711.js';

const rooms = Number(process.argv[2] ?? 20);
const perRoom = Number(process.argv[3] ?? 5);
const seconds = Number(process.argv[4] ?? 5);
// below the OS ephemeral range the senders bind in; a port taken by another process is skipped
let nextPort = Number(process.argv[5] ?? 16000);

async function bind(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const mixer = new ConferenceMixer();
const peers: { sock: Socket; port: number }[] = [];
let received = 0;
for (let r = 0; r < rooms; r++) {
  for (let p = 0; p < perRoom; p++) {
    const sock = await bind();
    sock.on('message', () => received++);
    let port = 0;
    for (let tries = 0; !port && tries < 50; tries++, nextPort += 2) {
      const join = {
        room: `room${r}`,
        id: `r${r}p${p}`,
        codec: p % 2 ? ('pcma' as const) : ('pcmu' as const),
        port: nextPort,
        bindAddr: '127.0.0.1',
        remote: { host: '127.0.0.1', port: sock.address().port },
      };
      port = await mixer.join(join).then(
        () => join.port,
        () => 0,
      );
    }
    if (!port) throw new Error('no free port pair for the mixer');
    peers.push({ sock, port });
  }
}
const payload = (codec: 'pcmu' | 'pcma', i: number) =>
  encode(
    codec,
    new Int16Array(160).map((_, k) => Math.round(3000 * Math.sin((2 * Math.PI * 440 * (i * 160 + k)) / 8000))),
  );
const frames = [payload('pcmu', 0), payload('pcma', 0)];
let seq = 0;
const header = Buffer.alloc(12);
const before = await mixer.stats();
const started = Date.now();
const timer = setInterval(() => {
  seq++;
  peers.forEach((p, i) => {
    const h = Buffer.from(header);
    h[0] = 0x80;
    h[1] = i % 2 ? 8 : 0;
    h.writeUInt16BE(seq & 0xffff, 2);
    h.writeUInt32BE((seq * 160) >>> 0, 4);
    h.writeUInt32BE(0x1000 + i, 8);
    p.sock.send(Buffer.concat([h, frames[i % 2]!]), p.port, '127.0.0.1');
  });
}, 20);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(timer);
const after = await mixer.stats();
const elapsed = (Date.now() - started) / 1000;
const ticks = after.ticks - before.ticks;
const underruns = after.underruns - before.underruns;
console.log(
  JSON.stringify({
    rooms,
    participantsPerRoom: perRoom,
    participants: peers.length,
    seconds: Math.round(elapsed * 10) / 10,
    ticks,
    underruns,
    maxTickMs: Math.round(after.maxTickMs * 100) / 100,
    packetsOutPerSecond: Math.round(received / elapsed),
    expectedOutPerSecond: peers.length * 50,
  }),
);
await mixer.close();
for (const p of peers) p.sock.close();
