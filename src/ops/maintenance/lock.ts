/**
 * A job runs on one process of the switch at a time: its row in tb_jobs is claimed by one conditional UPDATE (the
 * lease must have run out), so two processes or nodes on one database starting the same job at once get one
 * winner; the other learns who holds it. A lease outlives a crashed holder by at most its length; the holder renews
 * it between steps and frees it when done.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';

export type Claim = { ok: true } | { ok: false; node: string; since: number };

export class JobLock {
  constructor(
    private readonly db: Kysely<Database>,
    /** Who claims: node id, with the worker index under `serve --workers N`. */
    readonly node: string,
    private readonly now: () => number = Date.now,
  ) {}

  async claim(job: string, leaseMs: number): Promise<Claim> {
    const t = this.now();
    await this.db
      .insertInto('tb_jobs')
      .values({ name: job, node: '', started_at: null, lease_until: 0 })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const r = await this.db
      .updateTable('tb_jobs')
      .set({ node: this.node, started_at: t, lease_until: t + leaseMs })
      .where('name', '=', job)
      .where('lease_until', '<', t)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) return { ok: true };
    const row = await this.db.selectFrom('tb_jobs').selectAll().where('name', '=', job).executeTakeFirst();
    return { ok: false, node: row?.node ?? '?', since: Number(row?.started_at ?? 0) };
  }

  /** Extends a held lease; false when it was lost (expired and taken by another process). */
  async renew(job: string, leaseMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable('tb_jobs')
      .set({ lease_until: this.now() + leaseMs })
      .where('name', '=', job)
      .where('node', '=', this.node)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async release(job: string): Promise<void> {
    await this.db
      .updateTable('tb_jobs')
      .set({ lease_until: 0 })
      .where('name', '=', job)
      .where('node', '=', this.node)
      .execute();
  }

  /** Runs `fn` holding the job's lease; a held lease answers `busy` with the holder instead. */
  async withLease<T>(job: string, leaseMs: number, fn: () => Promise<T>): Promise<T | { busy: string; since: number }> {
    const c = await this.claim(job, leaseMs);
    if (!c.ok) return { busy: c.node, since: c.since };
    try {
      return await fn();
    } finally {
      await this.release(job).catch(() => undefined);
    }
  }
}

export function isBusy(v: unknown): v is { busy: string; since: number } {
  return typeof v === 'object' && v !== null && 'busy' in v && typeof (v as { busy: unknown }).busy === 'string';
}
