/**
 * Banned addresses, shared by the API and SIP: repeated authentication failures from one address ban it for
 * `bantime` seconds. Bans are kept in tb_bans so they survive a restart; look-ups are in memory. The counting and the
 * in-memory copy live in a state store: in-process by default, or shared (Redis) so that a ban made by one process or
 * node is seen by all and failures spread over several nodes add up.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { MemoryBans, type BanStore } from '../../state/bans.js';
import { normalizeIp, isLoopback } from './ip.js';

export interface Ban {
  ip: string;
  reason: string;
  until: number;
  created_at: number;
}

export interface BanPolicy {
  threshold: number; // failures before a ban (0: never)
  windowMs: number;
  banMs: number;
}

export class BanList {
  private readonly store: BanStore;

  /** Called for every new ban made here (logging). */
  onBan: (ban: Ban) => void = () => undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private policy: BanPolicy,
    private readonly now = () => Date.now(),
    store?: BanStore,
  ) {
    this.store = store ?? new MemoryBans(now);
    // the copy may have missed bans made elsewhere while the link was down: tb_bans has them all
    this.store.onResync(() => void this.load().catch(() => undefined));
  }

  setPolicy(p: BanPolicy): void {
    this.policy = p;
  }

  async load(): Promise<void> {
    const rows = await this.db.selectFrom('tb_bans').selectAll().where('until', '>', this.now()).execute();
    this.store.replace(rows.map((r) => ({ ...r, until: Number(r.until), created_at: Number(r.created_at) })));
  }

  isBanned(ipRaw: string): boolean {
    return this.store.isBanned(normalizeIp(ipRaw));
  }

  /** Counts an authentication failure; bans the address when it reaches the threshold. Returns true when banned now. */
  async recordFailure(ipRaw: string, what: string): Promise<boolean> {
    const ip = normalizeIp(ipRaw);
    // the server's own host is never banned: it must always be able to administer the server
    if (!this.policy.threshold || isLoopback(ip)) return false;
    const n = await this.store.recordFailure(ip, this.policy.windowMs);
    if (n < this.policy.threshold) return false;
    await this.store.clearFailures(ip).catch(() => undefined);
    await this.ban(ip, `${n} ${what} failures`, this.policy.banMs);
    return true;
  }

  clearFailures(ipRaw: string): void {
    void this.store.clearFailures(normalizeIp(ipRaw)).catch(() => undefined);
  }

  async ban(ipRaw: string, reason: string, ms: number): Promise<void> {
    const ip = normalizeIp(ipRaw);
    const b: Ban = { ip, reason, until: this.now() + ms, created_at: this.now() };
    const shared = this.store.ban(b); // in this process's copy at once; to the other nodes alongside the insert
    this.onBan(b);
    await Promise.all([
      shared,
      this.db
        .insertInto('tb_bans')
        .values(b)
        .onConflict((oc) => oc.column('ip').doUpdateSet({ reason: b.reason, until: b.until, created_at: b.created_at }))
        .execute(),
    ]);
  }

  list(): Ban[] {
    return this.store.list();
  }

  /** Lifts the ban on one address, or on all when ip is "all". Returns how many were lifted. */
  async remove(ip: string): Promise<number> {
    if (ip === 'all') {
      const n = this.list().length;
      await this.store.unban('all');
      await this.db.deleteFrom('tb_bans').execute();
      return n;
    }
    const key = normalizeIp(ip);
    const had = this.isBanned(key);
    await this.store.unban(key);
    await this.db.deleteFrom('tb_bans').where('ip', '=', key).execute();
    return had ? 1 : 0;
  }
}
