/**
 * RTP relay throughput on loopback: N concurrent relayed calls, each with both sides sending 172-byte packets
 * (G.711 20 ms) as fast as the test allows for a few seconds; prints packets forwarded per second, the
 * equivalent number of real calls (2 × 50 packets/s each) and the memory used.
 *   node .build-media/bench/media/relay.js [calls=200] [seconds=3]
 * Senders, relay and receivers share one process and one core: the figure is a lower bound for the relay.
 */
import { createSocket, type Socket } from 'node:dgram';
import { RtpRelay, type RelaySession } from '../../src/sip/media/relay.js';

const calls = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 3);

async function bind(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const min = 14000; // below the OS ephemeral range the test sockets bind in
const relay = new RtpRelay({ min, max: min + calls * 4 + 8, bindAddr: '127.0.0.1', timeoutSeconds: 0 });
const rss0 = process.memoryUsage().rss;
const legs: Array<{ a: Socket; b: Socket; s: RelaySession }> = [];
for (let i = 0; i < calls; i++) {
  const a = await bind();
  const b = await bind();
  const s = await relay.open('127.0.0.1');
  const sdp = (p: number) => Buffer.from(`v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio ${p} RTP/AVP 0\r\n`);
  s.sdp('a', sdp(a.address().port));
  s.sdp('b', sdp(b.address().port));
  legs.push({ a, b, s });
}
const rss1 = process.memoryUsage().rss;
let delivered = 0;
for (const l of legs) {
  l.a.on('message', () => delivered++);
  l.b.on('message', () => delivered++);
}
const pkt = Buffer.alloc(172, 0x80);
const end = Date.now() + seconds * 1000;
let sent = 0;
while (Date.now() < end) {
  for (const l of legs) {
    l.a.send(pkt, l.s.ports('a')[0]!, '127.0.0.1');
    l.b.send(pkt, l.s.ports('b')[0]!, '127.0.0.1');
    sent += 2;
  }
  await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setTimeout(r, 300));
const pps = delivered / seconds;
console.log(
  `relay: ${calls} relayed calls (${calls * 2} relay ports), ${sent} packets sent, ${delivered} forwarded (${((delivered / sent) * 100).toFixed(1)}%)`,
);
console.log(
  `relay: ${Math.round(pps)} packets/s forwarded ≈ ${Math.floor(pps / 100)} concurrent G.711 calls (100 packets/s each)`,
);
console.log(
  `relay: memory for the sessions ${((rss1 - rss0) / 1024 / 1024).toFixed(1)} MB (incl. the ${calls * 2} test sockets)`,
);
for (const l of legs) {
  l.s.release();
  l.a.close();
  l.b.close();
}
