// SIP stack throughput: REGISTERs over UDP on 127.0.0.1 through transport + transaction layer.
//   node .build-sipa/bench/sip/stack.js [seconds=5] [window=2000] [clients=2]
// Main thread: the SipStack with a trivial registrar TU (200 OK + Contact/Expires).
// Worker threads: load generators keeping `window` REGISTERs in flight each (new branch per request).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import dgram from 'node:dgram';
import { createResponse, getHeader } from '../../src/sip/message/index.js';
import { SipStack } from '../../src/sip/stack.js';

interface Job {
  port: number;
  seconds: number;
  window: number;
  id: number;
}

if (isMainThread) {
  const seconds = Number(process.argv[2] ?? 5);
  const window = Number(process.argv[3] ?? 2000);
  const clients = Number(process.argv[4] ?? 2);
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: -1,
    maxMessageSize: 65535,
    maxConnections: 10,
  });
  let handled = 0;
  stack.onRequest((req, tx) => {
    handled++;
    tx.respond(
      createResponse(req, 200, undefined, {
        headers: [
          { name: 'Contact', value: getHeader(req, 'contact') + ';expires=3600' },
          { name: 'Expires', value: '3600' },
        ],
      }),
    );
  });
  const [l] = await stack.start();
  const port = l!.port;
  const t0 = performance.now();
  const elu0 = performance.eventLoopUtilization();
  const results = await Promise.all(
    Array.from(
      { length: clients },
      (_, id) =>
        new Promise<{ sent: number; received: number; lost: number; p50: number; p99: number }>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { port, seconds, window, id } satisfies Job });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const dt = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  const received = results.reduce((a, r) => a + r.received, 0);
  const sent = results.reduce((a, r) => a + r.sent, 0);
  const lost = results.reduce((a, r) => a + r.lost, 0);
  const st = stack.stats();
  const mem = process.memoryUsage();
  console.log(`SIP stack UDP REGISTER bench: ${clients} client thread(s), window ${window} each, ${seconds}s`);
  console.log(`  requests sent        ${sent}`);
  console.log(`  handled by the TU    ${handled}`);
  console.log(`  200 OK received      ${received}  (${Math.round(received / dt)}/s)`);
  console.log(`  lost (retried)       ${lost}`);
  console.log(
    `  latency p50 / p99    ${results.map((r) => r.p50.toFixed(2) + ' / ' + r.p99.toFixed(2) + ' ms').join(', ')}`,
  );
  console.log(
    `  stack thread busy    ${(elu.utilization * 100).toFixed(0)}%  →  ${((elu.active * 1000) / handled).toFixed(1)} µs per REGISTER (parse + transaction + TU + serialize + send)`,
  );
  console.log(`  capacity estimate   ~${Math.round(handled / (elu.active / 1000))}/s on one core of this machine`);
  console.log(`  live server tx ${st.serverTransactions}, completed finals cached for Timer J ${st.completedCache}`);
  console.log(`  heap used ${(mem.heapUsed / 1048576).toFixed(0)} MB, rss ${(mem.rss / 1048576).toFixed(0)} MB`);
  await stack.stop();
} else {
  const job = workerData as Job;
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    sock.setRecvBufferSize(8 << 20);
  } catch {
    /* OS cap */
  }
  const lport = sock.address().port;
  const inflight = new Map<string, number>();
  let n = 0;
  let sent = 0;
  let received = 0;
  let lost = 0;
  const lat: number[] = [];
  const end = performance.now() + job.seconds * 1000;
  const mk = (): void => {
    const k = job.id + 'x' + (n++).toString(36);
    const user = 'u' + (n % 50000);
    const msg =
      `REGISTER sip:127.0.0.1 SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=z9hG4bK${k};rport\r\n` +
      `Max-Forwards: 70\r\n` +
      `From: <sip:${user}@127.0.0.1>;tag=${k}\r\n` +
      `To: <sip:${user}@127.0.0.1>\r\n` +
      `Call-ID: ${k}@bench\r\n` +
      `CSeq: 1 REGISTER\r\n` +
      `Contact: <sip:${user}@127.0.0.1:${lport}>\r\n` +
      `Expires: 3600\r\n` +
      `User-Agent: voxswitch-bench\r\n` +
      `Content-Length: 0\r\n\r\n`;
    inflight.set(k, performance.now());
    sent++;
    sock.send(msg, job.port, '127.0.0.1');
  };
  const done = new Promise<void>((resolve) => {
    sock.on('message', (buf) => {
      // branch=z9hG4bK<key>;  (cheap scan, this is the load generator)
      const s = buf.toString('latin1');
      const i = s.indexOf('branch=z9hG4bK');
      if (i < 0) return;
      const e = s.indexOf(';', i);
      const k = s.slice(i + 14, e);
      const t = inflight.get(k);
      if (t === undefined) return;
      inflight.delete(k);
      received++;
      if (lat.length < 200000) lat.push(performance.now() - t);
      if (performance.now() < end) mk();
      else if (inflight.size === 0) resolve();
    });
    // Re-fill the window for lost datagrams (socket buffer overflow) once a second.
    const iv = setInterval(() => {
      const now = performance.now();
      for (const [k, t] of inflight) {
        if (now - t > 1000) {
          inflight.delete(k);
          lost++;
          if (now < end) mk();
        }
      }
      if (now >= end + 1500) {
        clearInterval(iv);
        resolve();
      }
    }, 250);
  });
  for (let i = 0; i < job.window; i++) mk();
  await done;
  lat.sort((a, b) => a - b);
  parentPort!.postMessage({
    sent,
    received,
    lost,
    p50: lat[Math.floor(lat.length * 0.5)] ?? 0,
    p99: lat[Math.floor(lat.length * 0.99)] ?? 0,
  });
  sock.close();
}
