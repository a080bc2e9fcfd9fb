/**
 * The queue control: /proc/net/udp parsing, the reader (injected files, and once the real kernel queue of a socket
 * whose loop is blocked), the hysteresis of QueueState on injected readings, and the monitor refusing new SIP
 * requests (not continuations, not the API) while the queue is behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { rxQueue, QueueState, UdpReceiveQueue } from '../../src/overload/queue.js';
import { OverloadMonitor } from '../../src/overload/monitor.js';

const HEADER =
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';
const line = (port: number, rx: number) =>
  `  12: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 07 00000000:` +
  `${rx.toString(16).toUpperCase().padStart(8, '0')} 00:00000000 00000000     0        0 64238 2 0000000056d1c0ca 0\n`;

test('rxQueue: the rx_queue of the port watched, the fullest of several sockets, none for other ports', () => {
  const text = HEADER + line(5060, 0x500) + line(5061, 99999) + line(5060, 0x1200);
  assert.equal(rxQueue(text, new Set([5060])), 0x1200);
  assert.equal(rxQueue(text, new Set([5061])), 99999);
  assert.equal(rxQueue(text, new Set([5062])), undefined);
  assert.equal(rxQueue(HEADER, new Set([5060])), undefined);
  assert.equal(rxQueue(HEADER + line(5060, 0), new Set([5060])), 0);
});

test('UdpReceiveQueue: udp then udp6, the file that held the port first next time, nothing without /proc', () => {
  const files: Record<string, string> = {
    '/proc/net/udp': HEADER + line(7000, 100),
    '/proc/net/udp6': HEADER + line(5060, 2048),
  };
  const reads: string[] = [];
  const q = new UdpReceiveQueue((p) => {
    reads.push(p);
    if (!(p in files)) throw new Error('ENOENT');
    return files[p];
  });
  assert.equal(q.sample(), undefined, 'no port watched: nothing read');
  assert.equal(reads.length, 0);
  q.watch(5060);
  assert.equal(q.sample(), 2048);
  assert.deepEqual(reads, ['/proc/net/udp', '/proc/net/udp6']);
  reads.length = 0;
  assert.equal(q.sample(), 2048);
  assert.deepEqual(reads, ['/proc/net/udp6'], 'the file that held the port is read alone');

  const none = new UdpReceiveQueue(() => {
    throw new Error('ENOENT');
  });
  none.watch(5060);
  assert.equal(none.sample(), undefined);
});

test('UdpReceiveQueue on the real kernel queue: datagrams sent while our loop is blocked are counted', async (t) => {
  if (!existsSync('/proc/net/udp')) return t.skip('no /proc/net/udp (not Linux)');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  sock.on('message', () => undefined);
  const port = sock.address().port;
  const q = new UdpReceiveQueue();
  q.watch(port);
  try {
    assert.equal(q.sample(), 0);
    // spawnSync blocks this loop: the child's datagrams wait in the kernel buffer until it turns again
    const r = spawnSync(process.execPath, [
      '-e',
      `const s=require('dgram').createSocket('udp4');let n=0;const b=Buffer.alloc(500,65);` +
        `(function f(){if(n++<20)s.send(b,${port},'127.0.0.1',f);else s.close();})()`,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    const queued = q.sample();
    assert.ok(queued !== undefined && queued >= 20 * 500, `queued ${queued}`);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(q.sample(), 0, 'read by the loop');
  } finally {
    q.close();
    sock.close();
  }
});

test('QueueState: a lone full reading is a stall; three in a row turn it on until it drains to low', () => {
  let now = 0;
  const s = new QueueState({ high: 1000, low: 250, now: () => now });
  const feed = (...b: number[]) => b.map((x) => (s.reading(x), (now += 20), s.behind));
  assert.deepEqual(feed(5000, 0, 5000, 900), [false, false, false, false], 'stalls drained at once');
  assert.deepEqual(feed(1000, 2000, 1500), [false, false, true]);
  assert.deepEqual(feed(900, 400, undefined as unknown as number, 260), [true, true, true, true], 'hysteresis');
  assert.deepEqual(feed(250), [false]);
  assert.equal(s.episodes, 1);
  // within a second of catching up, half of high is enough (the same overload)
  assert.deepEqual(feed(499, 500), [false, true]);
  assert.equal(s.episodes, 2);
  feed(0);
  now += 1000;
  assert.deepEqual(feed(600, 1200, 1200), [false, false, false], 'past rearmMs: three readings past high again');
  assert.deepEqual(feed(1200), [true]);
  s.high = 0;
  assert.deepEqual(feed(99999), [false], 'high 0: off');
});

test('OverloadMonitor: new INVITE/REGISTER refused while the queue is behind; continuations and the API pass', () => {
  let bytes: number | undefined = 0;
  let now = 0;
  const m = new OverloadMonitor({
    thresholdMs: 100,
    queueHighBytes: 128 * 1024,
    queue: { sample: () => bytes },
    source: { sample: () => 0 },
    load: { sample: () => 0 },
    now: () => now,
  });
  const readings = (...b: Array<number | undefined>) => {
    for (const x of b) {
      bytes = x;
      now += 20;
      m.queueTick();
    }
  };
  readings(0, 200_000, 200_000);
  assert.equal(m.shed('sip'), 0);
  readings(200_000);
  assert.equal(m.stats().queue_behind, true);
  assert.equal(m.shed('sip'), 2);
  assert.equal(m.shed('sip', true), 0, 'answers our challenge: passes');
  assert.equal(m.shed('api'), 0);
  readings(undefined, 40_000);
  assert.equal(m.shed('sip'), 2, 'not drained to a quarter yet');
  readings(32 * 1024);
  assert.equal(m.shed('sip'), 0);
  const st = m.stats();
  assert.equal(st.refused_queue, 2);
  assert.equal(st.refused_sip, 2);
  assert.equal(st.queue_threshold_bytes, 128 * 1024);
  assert.equal(st.queue_peak_bytes, 200_000);
  assert.equal(m.stats().queue_peak_bytes, 32 * 1024, 'the peak restarts at each stats');
  m.queueHighBytes = 0;
  readings(900_000, 900_000, 900_000, 900_000);
  assert.equal(m.shed('sip'), 0, 'off');
});
