/**
 * bench/state: operations per second of the state stores, in-process and on Redis (127.0.0.1:6379, or the URL
 * given): single-use claims (API salts), digest nonce-count accepts, rate-limiter consumes, failure counts, and the
 * synchronous isBanned. Each is run one at a time (latency bound) and with 64 in flight (ioredis pipelines commands
 * issued together). Keys use a prefix of their own, deleted at the end.
 * Usage: npm run bench:state [-- seconds redisurl]
 */
import { Redis } from 'ioredis';
import { openState, type State } from '../../src/state/index.js';

const SECONDS = Number(process.argv[2] ?? 1);
const REDIS = process.argv[3] ?? 'redis://127.0.0.1:6379';
const PREFIX = `vxbench:${process.pid}:`;

type Op = (i: number) => Promise<unknown>;

async function measure(op: Op, inFlight: number): Promise<number> {
  let i = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) await op(i++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return i / ((performance.now() - t0) / 1000);
}

function ops(s: State): Array<[string, Op]> {
  const limiter = s.limits.create({ name: 'bench', points: 1e9, durationSec: 60 });
  const run = Date.now().toString(36);
  return [
    ['once.claim', (i) => s.once.claim(`salt:${run}:${i}`, 60_000)],
    ['nonces.accept', (i) => s.nonces.accept(`nonce:${run}:${i >> 8}`, (i & 255) + 1, 60_000)],
    ['limiter.consume', (i) => limiter.consume(`10.0.${(i >> 8) & 255}.${i & 255}`)],
    ['bans.recordFailure', (i) => s.bans.recordFailure(`198.18.${(i >> 8) & 255}.${i & 255}`, 60_000)],
  ];
}

async function bench(label: string, s: State): Promise<void> {
  for (const [name, op] of ops(s)) {
    await measure(op, 8); // warm-up
    const one = await measure(op, 1);
    const many = await measure(op, 64);
    console.log(
      `${label.padEnd(7)} ${name.padEnd(20)} ${Math.round(one).toLocaleString('en').padStart(11)} ops/s one at a time` +
        `   ${Math.round(many).toLocaleString('en').padStart(11)} ops/s 64 in flight`,
    );
  }
  const t = Date.now();
  s.bans.replace(
    Array.from({ length: 1000 }, (_v, i) => ({ ip: `192.0.2.${i}`, reason: 'b', until: t + 6e4, created_at: t })),
  );
  let hits = 0;
  const n = 2_000_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (s.bans.isBanned(i & 1 ? '192.0.2.7' : '203.0.113.1')) hits++;
  const rate = n / ((performance.now() - t0) / 1000);
  console.log(
    `${label.padEnd(7)} ${'bans.isBanned (sync)'.padEnd(20)} ${Math.round(rate).toLocaleString('en').padStart(11)} ops/s`,
  );
  if (hits !== n / 2) throw new Error('isBanned answered wrongly');
}

const memory = await openState({});
await bench('memory', memory);
await memory.close();

let redis: State | undefined;
try {
  redis = await openState({ redisUrl: REDIS, prefix: PREFIX });
} catch (e) {
  console.log(`redis: skipped (${(e as Error).message})`);
}
if (redis) {
  await bench('redis', redis);
  await redis.close();
  const c = new Redis(REDIS);
  for await (const keys of c.scanStream({ match: `${PREFIX}*`, count: 1000 }) as AsyncIterable<string[]>)
    if (keys.length) await c.unlink(...keys);
  c.disconnect();
}
