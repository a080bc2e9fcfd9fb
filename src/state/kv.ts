/**
 * Small key-value stores with expiry, by namespace: `TtlStore` for single values (presence publications, call
 * states, a location cache) and `HashStore` for one hash of fields per key whose fields expire one by one (the
 * contacts of an address-of-record, each with its own Expires). A hash is replaced whole by compare-and-set on a
 * version, so the registrar's read-check-write of a REGISTER (CSeq order, most bindings per user) stays atomic when
 * two nodes register the same user at once; `mutate` runs that loop.
 */
import type { Redis } from 'ioredis';

export interface TtlStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface HashEntry {
  value: string;
  /** Absolute expiry (ms since the epoch). */
  expiresAt: number;
}

export interface HashSnapshot {
  /** Changes on every write; 0 for a key that holds nothing. */
  version: number;
  /** Live fields only. */
  fields: Map<string, HashEntry>;
}

export interface HashStore {
  read(key: string): Promise<HashSnapshot>;
  /** Replaces every field of the key if its version is still `version`; false when another write came first. */
  write(key: string, fields: Map<string, HashEntry>, version: number): Promise<boolean>;
  /**
   * As `write`, but resolves to a stamp of the write (0 when another write came first): stamps grow with every
   * write of any key, an emptied key's included, so readers can order writes; the key's version is the stamp, or 0
   * once the write left it empty.
   */
  put(key: string, fields: Map<string, HashEntry>, version: number): Promise<number>;
  /** Keys that have at least one live field. */
  keys(): Promise<string[]>;
}

/**
 * Read, change, write until no other writer came in between (at most `tries` times). `change` returns the new fields,
 * or null to leave the key as it is; its result is returned with the fields written.
 */
export async function mutate<T>(
  store: HashStore,
  key: string,
  change: (fields: Map<string, HashEntry>) => { fields: Map<string, HashEntry> | null; result: T },
  tries = 16,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const snap = await store.read(key);
    const { fields, result } = change(snap.fields);
    if (!fields || (await store.write(key, fields, snap.version))) return result;
    // another writer came first: back off a little (randomly, so that contenders spread out) and read again
    await new Promise((r) => setTimeout(r, Math.random() * 2 * (i + 1)));
  }
  throw new Error(`too many concurrent writers of "${key}"`);
}

const live = (fields: Map<string, HashEntry>, t: number) =>
  new Map([...fields].filter(([, e]) => e.expiresAt > t).map(([f, e]) => [f, { ...e }]));

export class MemoryTtl implements TtlStore {
  private readonly map = new Map<string, { value: string; exp: number }>();
  private lastSweep = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async get(key: string): Promise<string | undefined> {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.exp > this.now()) return e.value;
    this.map.delete(key);
    return undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const t = this.now();
    if (t - this.lastSweep > 10_000) {
      this.lastSweep = t;
      for (const [k, e] of this.map) if (e.exp <= t) this.map.delete(k);
    }
    this.map.set(key, { value, exp: t + ttlMs });
  }

  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
}

export class MemoryHash implements HashStore {
  private readonly map = new Map<string, { version: number; fields: Map<string, HashEntry> }>();
  private versions = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async read(key: string): Promise<HashSnapshot> {
    return this.readSync(key);
  }

  private readSync(key: string): HashSnapshot {
    const h = this.map.get(key);
    if (!h) return { version: 0, fields: new Map() };
    const fields = live(h.fields, this.now());
    if (!fields.size) {
      this.map.delete(key);
      return { version: 0, fields };
    }
    return { version: h.version, fields };
  }

  async write(key: string, fields: Map<string, HashEntry>, version: number): Promise<boolean> {
    return (await this.put(key, fields, version)) !== 0;
  }

  async put(key: string, fields: Map<string, HashEntry>, version: number): Promise<number> {
    // check and set without an await in between: nothing else can write in the meantime
    if (this.readSync(key).version !== version) return 0;
    const next = live(fields, this.now());
    const stamp = ++this.versions;
    if (next.size) this.map.set(key, { version: stamp, fields: next });
    else this.map.delete(key);
    return stamp;
  }

  async keys(): Promise<string[]> {
    const t = this.now();
    const out: string[] = [];
    for (const [k, h] of this.map) {
      if ([...h.fields.values()].some((e) => e.expiresAt > t)) out.push(k);
      else this.map.delete(k);
    }
    return out;
  }
}

export class RedisTtl implements TtlStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}

/**
 * Compare-and-set of a whole hash. Fields are stored as "f:" + name → "expiresAt|value" beside a version field "v"
 * (the stamp of the write, from one counter of the namespace; the script returns it, 0 when refused);
 * the key expires with its last field, and an index (sorted set, score: latest expiry) lists the keys for `keys()`.
 */
const WRITE_LUA = `
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local stamp = redis.call('INCR', KEYS[3])
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], 'v', stamp, unpack(ARGV, 4))
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return stamp
`;

type WithWrite = Redis & {
  vxHashWrite(hash: string, index: string, counter: string, ...args: string[]): Promise<number>;
};

export class RedisHash implements HashStore {
  private readonly redis: WithWrite;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    redis.defineCommand('vxHashWrite', { numberOfKeys: 3, lua: WRITE_LUA });
    this.redis = redis as WithWrite;
  }

  private hashKey(key: string): string {
    return `${this.prefix}h:${key}`;
  }

  async read(key: string): Promise<HashSnapshot> {
    const raw = await this.redis.hgetall(this.hashKey(key));
    const t = this.now();
    const fields = new Map<string, HashEntry>();
    for (const [f, packed] of Object.entries(raw)) {
      if (!f.startsWith('f:')) continue;
      const bar = packed.indexOf('|');
      const expiresAt = Number(packed.slice(0, bar));
      if (expiresAt > t) fields.set(f.slice(2), { expiresAt, value: packed.slice(bar + 1) });
    }
    return { version: raw.v === undefined ? 0 : Number(raw.v), fields };
  }

  async write(key: string, fields: Map<string, HashEntry>, version: number): Promise<boolean> {
    return (await this.put(key, fields, version)) !== 0;
  }

  async put(key: string, fields: Map<string, HashEntry>, version: number): Promise<number> {
    const t = this.now();
    const args: string[] = [];
    let latest = 0;
    for (const [f, e] of fields) {
      if (e.expiresAt <= t) continue;
      args.push(`f:${f}`, `${Math.ceil(e.expiresAt)}|${e.value}`);
      latest = Math.max(latest, Math.ceil(e.expiresAt));
    }
    const r = await this.redis.vxHashWrite(
      this.hashKey(key),
      `${this.prefix}index`,
      `${this.prefix}version`,
      String(version),
      key,
      String(latest),
      ...args,
    );
    return Number(r);
  }

  async keys(): Promise<string[]> {
    const index = `${this.prefix}index`;
    await this.redis.zremrangebyscore(index, '-inf', this.now());
    return this.redis.zrange(index, 0, -1);
  }
}
