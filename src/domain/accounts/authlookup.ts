/**
 * The look-up behind every authentication (each SIP digest check, each API call): authid → the account with its
 * clear password, cached. An entry is fresh for `cacheMs`; look-ups that miss in the same turn of the event loop
 * share one query (under load, a REGISTER burst costs a few queries, not one each); a refreshed entry whose stored
 * password did not change keeps its decrypted password (no AES-GCM per refresh); entries past a few lifetimes are
 * swept when a query runs, and by a timer while the cache holds entries (an idle switch keeps no accounts or clear
 * passwords in memory). `clear()` drops everything, and a query that was under way when it was called does not
 * put its (possibly older) rows back into the cache.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { SecretBox } from './secrets.js';

/** Most look-ups one query answers. */
const BATCH = 200;
/** A stale entry is kept for KEEP × cacheMs (for its decrypted password), then swept. */
const KEEP = 4;
/** Most cached look-ups; past it the oldest entry goes (one per insertion). */
const CACHE_MAX = 150_000;

type Row = Database['tb_users'] extends infer T ? { [K in keyof T]: any } : never;

interface Entry<U> {
  at: number;
  user: U | null;
  /** the stored (encrypted) password the clear one was decrypted from */
  enc: string | null;
}

interface Waiter<U> {
  authid: string;
  resolve: (u: U | null) => void;
  reject: (e: unknown) => void;
}

/**
 * A batch's keys repeated up to the next power of two: the query's text then takes one of a few shapes, so the
 * database keeps a few prepared statements, not one per batch size (400 of them held some 30 MB).
 */
function padded<T>(list: T[]): T[] {
  const len = list.length;
  if (len < 2) return list;
  let n = 2;
  while (n < len) n *= 2;
  for (let i = len; i < n; i++) list.push(list[i - len]!);
  return list;
}

export class AuthLookup<U extends { password: string }> {
  private readonly cache = new Map<string, Entry<U>>();
  private readonly inflight = new Map<string, Promise<U | null>>();
  private queue: Array<Waiter<U>> = [];
  private scheduled = false;
  /** bumped by clear(): results of a query started before are not cached */
  private generation = 0;
  /** the idle sweep, armed while the cache is not empty */
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly toUser: (r: Row, password: string) => U,
    private readonly cacheMs: number,
  ) {}

  clear(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
    this.cache.clear();
    this.inflight.clear();
    this.generation++;
  }

  /** The cached look-ups (authid, the account or null for a miss, its age in ms), without their passwords. */
  entries(): Array<{ authid: string; user: Omit<U, 'password'> | null; ageMs: number }> {
    const now = Date.now();
    const out: Array<{ authid: string; user: Omit<U, 'password'> | null; ageMs: number }> = [];
    for (const [authid, e] of this.cache) {
      let user: Omit<U, 'password'> | null = null;
      if (e.user) {
        const { password: _password, ...rest } = e.user;
        user = rest;
      }
      out.push({ authid, user, ageMs: now - e.at });
    }
    return out;
  }

  get(authid: string): Promise<U | null> {
    const hit = this.cache.get(authid);
    if (hit !== undefined && Date.now() - hit.at < this.cacheMs) return Promise.resolve(hit.user);
    const running = this.inflight.get(authid);
    if (running !== undefined) return running;
    const p = new Promise<U | null>((resolve, reject) => this.queue.push({ authid, resolve, reject }));
    this.inflight.set(authid, p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return p;
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += BATCH) void this.run(all.slice(i, i + BATCH));
  }

  /**
   * Drops entries past KEEP lifetimes (the Map's order is the age order: oldest first). Until then a stale entry
   * still saves the decryption of an unchanged password; after, it would only hold memory.
   */
  private sweep(now: number): void {
    const limit = now - Math.max(1000, KEEP * this.cacheMs);
    for (const [k, e] of this.cache) {
      if (e.at >= limit) break;
      this.cache.delete(k);
    }
  }

  /** Sweeps once a lifetime while something is cached (unref'd: never keeps the process alive). */
  private armSweeper(): void {
    if (this.sweeper !== undefined || this.cache.size === 0) return;
    this.sweeper = setTimeout(
      () => {
        this.sweeper = undefined;
        this.sweep(Date.now());
        this.armSweeper();
      },
      Math.max(1000, this.cacheMs),
    );
    this.sweeper.unref();
  }

  private async run(waiters: Array<Waiter<U>>): Promise<void> {
    const gen = this.generation;
    const keys = padded(waiters.map((w) => w.authid));
    const ids = padded(keys.filter((k) => /^\d{1,9}$/.test(k)).map(Number));
    let rows: Row[];
    try {
      // one query whatever the outcome, so a known and an unknown authid take the same time
      rows = (await this.db
        .selectFrom('tb_users')
        .selectAll()
        .where((eb) => {
          const ors = [eb('username', 'in', keys), eb('pin', 'in', keys), eb('did', 'in', keys)];
          if (ids.length) ors.push(eb('id', 'in', ids));
          return eb.or(ors);
        })
        .execute()) as Row[];
    } catch (e) {
      for (const w of waiters) {
        if (gen === this.generation) this.inflight.delete(w.authid);
        w.reject(e);
      }
      return;
    }
    const by = (col: 'username' | 'pin' | 'did') => new Map(rows.filter((r) => r[col] != null).map((r) => [r[col], r]));
    const byName = by('username');
    const byPin = by('pin');
    const byDid = by('did');
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const now = Date.now();
    if (gen === this.generation) this.sweep(now);
    for (const w of waiters) {
      const a = w.authid;
      // priority: username, then PIN, then DID, then user id
      const r =
        byName.get(a) ?? byPin.get(a) ?? byDid.get(a) ?? (/^\d{1,9}$/.test(a) ? byId.get(Number(a)) : undefined);
      const old = this.cache.get(a);
      let user: U | null = null;
      const enc: string | null = r ? r.password_enc : null;
      if (r) {
        try {
          const password = old?.user && old.enc === enc ? old.user.password : this.box.decrypt(r.password_enc);
          user = this.toUser(r, password);
        } catch {
          user = null; // a password we cannot read authenticates nobody
        }
      }
      if (gen === this.generation) {
        this.inflight.delete(a);
        if (old !== undefined)
          this.cache.delete(a); // re-inserted last: the Map's order is the age order
        else if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(a, { at: now, user, enc });
      }
      w.resolve(user);
    }
    this.armSweeper();
  }
}
