/**
 * Redis for the state tests: the server on 127.0.0.1:6379 (VOXSWITCH_TEST_REDIS to change), a key prefix of this
 * run (deleted afterwards), and a TCP proxy in front of Redis that a test can cut and restore to play an outage.
 * Outside CI a missing Redis skips the tests with the printed reason; with CI=true it fails them.
 */
import { TcpProxy } from '../helpers/proxy.js';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.VOXSWITCH_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** Null when Redis answers PING; else why not (throws in CI). */
export async function redisMissing(): Promise<string | null> {
  const c = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1500, retryStrategy: () => null });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.ping();
    return null;
  } catch (e) {
    const reason = `Redis not reachable at ${REDIS_URL}: ${(e as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${reason} (required in CI)`);
    console.log(`# skipping Redis state tests: ${reason}`);
    return reason;
  } finally {
    c.disconnect();
  }
}

let seq = 0;
/** A key prefix no other test run uses. */
export function testPrefix(): string {
  return `vxtest:${process.pid}:${Date.now().toString(36)}:${++seq}:`;
}

/** Deletes every key under the prefix. */
export async function dropPrefix(prefix: string): Promise<void> {
  const c = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1500, retryStrategy: () => null });
  c.on('error', () => undefined);
  try {
    await c.connect();
    for await (const keys of c.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>)
      if (keys.length) await c.unlink(...keys);
  } finally {
    c.disconnect();
  }
}

/** Counts the keys under the prefix. */
export async function countKeys(prefix: string): Promise<number> {
  const c = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1500, retryStrategy: () => null });
  c.on('error', () => undefined);
  let n = 0;
  try {
    await c.connect();
    for await (const keys of c.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>)
      n += keys.length;
  } finally {
    c.disconnect();
  }
  return n;
}

/** A TCP proxy to Redis on a local port (test/helpers/proxy.ts); `open()` answers the URL to give the server. */
export class RedisProxy extends TcpProxy {
  constructor() {
    const target = new URL(REDIS_URL);
    super(target.hostname, Number(target.port || 6379));
  }

  /** Listens on a free port; answers the Redis URL through the proxy. */
  async open(): Promise<string> {
    await this.start();
    return this.url(REDIS_URL);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until cond() is true (polling), or fails after timeoutMs. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
