/**
 * Banned addresses, shared by the API and (later) SIP: repeated authentication failures from one address ban
 * it for `bantime` seconds. Bans are kept in tb_bans so they survive a restart; look-ups are in memory.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
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
  private bans = new Map<string, Ban>();
  private failures = new Map<string, number[]>();

  /** Called for every new ban (logging). */
  onBan: (ban: Ban) => void = () => undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private policy: BanPolicy,
    private readonly now = () => Date.now(),
  ) {}

  setPolicy(p: BanPolicy): void {
    this.policy = p;
  }

  async load(): Promise<void> {
    const rows = await this.db.selectFrom('tb_bans').selectAll().where('until', '>', this.now()).execute();
    this.bans = new Map(rows.map((r) => [r.ip, { ...r, until: Number(r.until), created_at: Number(r.created_at) }]));
  }

  isBanned(ipRaw: string): boolean {
    const b = this.bans.get(normalizeIp(ipRaw));
    if (!b) return false;
    if (b.until > this.now()) return true;
    this.bans.delete(b.ip);
    return false;
  }

  /** Counts an authentication failure; bans the address when it reaches the threshold. Returns true when banned now. */
  async recordFailure(ipRaw: string, what: string): Promise<boolean> {
    const ip = normalizeIp(ipRaw);
    // the server's own host is never banned: it must always be able to administer the server
    if (!this.policy.threshold || isLoopback(ip)) return false;
    const t = this.now();
    const list = (this.failures.get(ip) ?? []).filter((x) => t - x < this.policy.windowMs);
    list.push(t);
    if (list.length >= this.policy.threshold) {
      this.failures.delete(ip);
      await this.ban(ip, `${list.length} ${what} failures`, this.policy.banMs);
      return true;
    }
    this.failures.set(ip, list);
    if (this.failures.size > 50_000) this.failures.clear();
    return false;
  }

  clearFailures(ipRaw: string): void {
    this.failures.delete(normalizeIp(ipRaw));
  }

  async ban(ipRaw: string, reason: string, ms: number): Promise<void> {
    const ip = normalizeIp(ipRaw);
    const b: Ban = { ip, reason, until: this.now() + ms, created_at: this.now() };
    this.bans.set(ip, b);
    this.onBan(b);
    await this.db
      .insertInto('tb_bans')
      .values(b)
      .onConflict((oc) => oc.column('ip').doUpdateSet({ reason: b.reason, until: b.until, created_at: b.created_at }))
      .execute();
  }

  list(): Ban[] {
    const t = this.now();
    return [...this.bans.values()].filter((b) => b.until > t).sort((a, b) => a.created_at - b.created_at);
  }

  /** Lifts the ban on one address, or on all when ip is "all". Returns how many were lifted. */
  async remove(ip: string): Promise<number> {
    if (ip === 'all') {
      const n = this.list().length;
      this.bans.clear();
      this.failures.clear();
      await this.db.deleteFrom('tb_bans').execute();
      return n;
    }
    const key = normalizeIp(ip);
    const had = this.isBanned(key);
    this.bans.delete(key);
    this.failures.delete(key);
    await this.db.deleteFrom('tb_bans').where('ip', '=', key).execute();
    return had ? 1 : 0;
  }
}
