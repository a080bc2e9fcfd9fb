/**
 * The Redis connection of the shared state: connects with a bounded wait (a clear error naming the URL when Redis
 * does not answer), then tracks the link. While the link is down commands fail at once (no offline queue) and
 * commands already sent fail after `commandTimeoutMs`, so callers can refuse new work instead of piling it up;
 * ioredis keeps reconnecting in the background.
 */
import { Redis, type RedisOptions } from 'ioredis';

export interface StateLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisLinkOptions {
  url: string;
  log?: StateLog;
  /** Longest wait for the first connection (ms). */
  connectTimeoutMs?: number;
  /** Longest wait for the answer to one command (ms). */
  commandTimeoutMs?: number;
}

/** The URL without its password, for errors and logs. */
export function redactUrl(url: string): string {
  return url.replace(
    /\/\/([^@/]*)@/,
    (_m, auth: string) => `//${auth.includes(':') ? auth.split(':')[0] + ':***' : '***'}@`,
  );
}

/** A connected client and the state of its link. */
export class RedisLink {
  readonly client: Redis;
  readonly url: string;
  private down: string | null = null;
  private lastError = '';
  private readonly listeners: Array<(up: boolean) => void> = [];
  private closing = false;

  private constructor(
    client: Redis,
    url: string,
    private readonly log?: StateLog,
  ) {
    this.client = client;
    this.url = url;
    client.on('error', (e: Error) => (this.lastError = e.message));
    client.on('close', () => this.lost());
    client.on('ready', () => this.restored());
  }

  /** Connects, or throws an Error naming the URL and what to check. */
  static async connect(o: RedisLinkOptions): Promise<RedisLink> {
    const url = redactUrl(o.url);
    const timeout = o.connectTimeoutMs ?? 3000;
    const client = new Redis(o.url, clientOptions(o));
    let lastError = '';
    const onError = (e: Error) => (lastError = e.message);
    client.on('error', onError);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise((_r, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (e) {
      client.disconnect();
      const why = lastError || (e as Error).message;
      throw new Error(
        `Redis at ${url} is not reachable (${why}): check that Redis runs there and that the option "redisurl" ` +
          'is right (redis://[user:password@]host:port[/db]), or leave redisurl empty for in-process state',
      );
    } finally {
      clearTimeout(timer);
      client.off('error', onError);
    }
    return new RedisLink(client, url, o.log);
  }

  /** Null while Redis answers; else why the shared state is unavailable. */
  unavailable(): string | null {
    return this.down;
  }

  /** Called with false when the link is lost and with true when it is back. */
  onLink(fn: (up: boolean) => void): void {
    this.listeners.push(fn);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private lost(): void {
    if (this.closing || this.down) return;
    this.down = `Redis at ${this.url} unreachable${this.lastError ? ` (${this.lastError})` : ''}`;
    this.log?.error(
      { redis: this.url, error: this.lastError || undefined },
      'shared state lost: Redis connection closed; calls in progress go on, new calls are refused until it is back',
    );
    for (const l of this.listeners) l(false);
  }

  private restored(): void {
    if (!this.down) return;
    this.down = null;
    this.log?.warn({ redis: this.url }, 'shared state restored: Redis connection is back');
    for (const l of this.listeners) l(true);
  }
}

/** Options for every connection of the state layer (the subscriber is a duplicate). */
function clientOptions(o: RedisLinkOptions): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: o.connectTimeoutMs ?? 3000,
    commandTimeout: o.commandTimeoutMs ?? 1000,
    // fail fast while disconnected instead of queueing without bound
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    // concurrent commands share one round trip
    enableAutoPipelining: true,
  };
}
