/**
 * The steps of the maintenance jobs. Each step does its work in transactions of its own (a batch is deleted whole
 * or not at all), so a job that fails half way leaves every step it ran complete and the failing one rolled back
 * to its last whole batch; the next run carries on from there. `checkpoint` runs inside each transaction before it
 * commits (the tests inject a failure there).
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../../storage/schema.js';
import type { Storage } from '../../storage/db.js';
import type { Ledger } from '../../domain/billing/ledger.js';
import { reconcile } from '../../domain/billing/reconcile.js';
import { buildDailyReport, saveReport, type DailyReport } from '../reports/daily.js';

const DAY = 86_400_000;
/** Rows deleted per transaction. */
const BATCH = 5000;

export interface MaintOptions {
  cdrretentiondays: number;
  jobretentiondays: number;
  lowcredit: number;
}

export interface StepContext {
  storage: Storage;
  ledger: Ledger;
  dataDir: string;
  log: Logger;
  options: MaintOptions;
  now: number;
  /** Called inside each transaction before it commits. */
  checkpoint(label: string, trx: Transaction<Database>): Promise<void>;
  /** A finished daily report (e-mail hook). */
  onReport(r: DailyReport, files: { text: string; html: string }): void;
}

export type StepSummary = Record<string, string | number>;
export type Step = (c: StepContext) => Promise<StepSummary>;

/** Deletes `table` rows matching `where`, BATCH ids per transaction, until none is left. */
async function deleteInBatches(
  c: StepContext,
  label: string,
  table: 'tb_cdrs' | 'tb_jobruns' | 'tb_pins' | 'tb_imessages',
  where: (db: Kysely<Database>) => Promise<number[]>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = await where(c.storage.db);
    if (!ids.length) return total;
    await c.storage.db.transaction().execute(async (trx) => {
      await trx.deleteFrom(table).where('id', 'in', ids).execute();
      await c.checkpoint(label, trx);
    });
    total += ids.length;
  }
}

/** Runs a statement on the SQLite connection while kysely holds it (no query or transaction in between). */
async function onSqlite<T>(c: StepContext, fn: () => T): Promise<T> {
  return c.storage.db.connection().execute(async () => fn());
}

export const STEPS: Record<string, Step> = {
  /** Number reservations (numberlock) whose time ran out go back to the pool. */
  async numberlocks(c) {
    const n = await c.storage.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('tb_numbers')
        .set({ status: 'free', userid: 0, locked_until: null })
        .where('status', '=', 'locked')
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', c.now)]))
        .executeTakeFirst();
      await c.checkpoint('numberlocks', trx);
      return Number(r.numUpdatedRows);
    });
    return { freed: n };
  },
  /** Bans past their time are deleted from tb_bans (each process's copy drops them by itself). */
  async bans(c) {
    const r = await c.storage.db.deleteFrom('tb_bans').where('until', '<=', c.now).executeTakeFirst();
    return { expired: Number(r.numDeletedRows) };
  },
  /** Recharge PINs: expired unused ones counted (redeeming them is refused); every used PIN has its ledger entry. */
  async pins(c) {
    const db = c.storage.db;
    const expired = await db
      .selectFrom('tb_pins')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('used_at', 'is', null)
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', c.now)
      .executeTakeFirstOrThrow();
    const used = await db.selectFrom('tb_pins').select('id').where('used_at', 'is not', null).execute();
    const refs = await db.selectFrom('tb_ledger').select('ref').where('ref', 'like', 'pin:%').execute();
    const credited = new Set(refs.map((r) => r.ref));
    const unbooked = used.filter((p) => !credited.has(`pin:${p.id}`)).map((p) => Number(p.id));
    if (unbooked.length) c.log.error({ pins: unbooked.slice(0, 50) }, 'used PINs without their ledger entry');
    return { expired_unused: Number(expired.n), used: used.length, used_without_ledger: unbooked.length };
  },
  /** CDRs that ended more than cdrretentiondays ago are deleted (0: all kept). */
  async cdrs(c): Promise<StepSummary> {
    const days = c.options.cdrretentiondays;
    if (!days) return { deleted: 0, kept: 'all (cdrretentiondays=0)' };
    const cutoff = c.now - days * DAY;
    const deleted = await deleteInBatches(c, 'cdrs', 'tb_cdrs', async (db) =>
      (await db.selectFrom('tb_cdrs').select('id').where('end_at', '<', cutoff).limit(BATCH).execute()).map((r) =>
        Number(r.id),
      ),
    );
    return { deleted, before: new Date(cutoff).toISOString() };
  },
  /** Every balance against the sum of its ledger entries; each mismatch is logged as an error. */
  async reconcile(c) {
    const m = await reconcile(c.ledger, c.log);
    return {
      accounts_checked: 'all',
      mismatches: m.length,
      first: m
        .slice(0, 5)
        .map((x) => x.userId)
        .join(','),
    };
  },
  /** SQLite: PRAGMA optimize and a WAL checkpoint (TRUNCATE); PostgreSQL: ANALYZE. */
  async housekeeping(c): Promise<StepSummary> {
    const s = c.storage.sqlite;
    if (s) {
      const ck = await onSqlite(c, () => {
        s.raw.pragma('optimize');
        return s.raw.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      });
      return { optimize: 'done', wal_pages_checkpointed: Number(ck[0]?.checkpointed ?? 0), busy: ck[0]?.busy ?? 0 };
    }
    await sql`ANALYZE`.execute(c.storage.db);
    return { analyze: 'done' };
  },
  /** The report of the day before, written to <datadir>/reports and handed to the e-mail hook. */
  async report(c) {
    const r = await buildDailyReport(c.storage.db, '', c.options.lowcredit, c.now);
    const files = saveReport(c.dataDir, r);
    c.onReport(r, files);
    return { day: r.day, calls: r.calls, file: files.text };
  },
  /** SQLite: PRAGMA quick_check; PostgreSQL: VACUUM (ANALYZE). */
  async integrity(c): Promise<StepSummary> {
    const s = c.storage.sqlite;
    if (s) {
      const r = await onSqlite(c, () => s.raw.pragma('quick_check', { simple: true }));
      if (r !== 'ok') c.log.error({ check: r }, 'SQLite quick_check found damage: restore from a backup');
      return { quick_check: String(r) };
    }
    await sql`VACUUM (ANALYZE)`.execute(c.storage.db);
    return { vacuum: 'done' };
  },
  /** Maintenance run records older than jobretentiondays. */
  async jobruns(c) {
    const cutoff = c.now - c.options.jobretentiondays * DAY;
    const deleted = await deleteInBatches(c, 'jobruns', 'tb_jobruns', async (db) =>
      (await db.selectFrom('tb_jobruns').select('id').where('started_at', '<', cutoff).limit(BATCH).execute()).map(
        (r) => Number(r.id),
      ),
    );
    return { deleted };
  },
  /** Report files older than jobretentiondays. */
  async reports(c) {
    const dir = join(c.dataDir, 'reports');
    const cutoff = c.now - c.options.jobretentiondays * DAY;
    let deleted = 0;
    if (existsSync(dir)) {
      for (const n of readdirSync(dir)) {
        if (!/^daily-\d{4}-\d{2}-\d{2}\.(txt|html)$/.test(n)) continue;
        if (statSync(join(dir, n)).mtimeMs >= cutoff) continue;
        rmSync(join(dir, n), { force: true });
        deleted++;
      }
    }
    return { deleted };
  },
  /** Unused PINs that expired more than jobretentiondays ago (they can never be redeemed). */
  async deadpins(c) {
    const cutoff = c.now - c.options.jobretentiondays * DAY;
    const deleted = await deleteInBatches(c, 'deadpins', 'tb_pins', async (db) =>
      (
        await db
          .selectFrom('tb_pins')
          .select('id')
          .where('used_at', 'is', null)
          .where('expires_at', 'is not', null)
          .where('expires_at', '<', cutoff)
          .limit(BATCH)
          .execute()
      ).map((r) => Number(r.id)),
    );
    return { deleted };
  },
  /** Offline instant messages delivered more than jobretentiondays ago. */
  async imessages(c) {
    const cutoff = c.now - c.options.jobretentiondays * DAY;
    const deleted = await deleteInBatches(c, 'imessages', 'tb_imessages', async (db) =>
      (await db.selectFrom('tb_imessages').select('id').where('delivered_at', '<', cutoff).limit(BATCH).execute()).map(
        (r) => Number(r.id),
      ),
    );
    return { deleted };
  },
};

export type JobName = 'hourlymaint' | 'dailymaint' | 'weeklymaint' | 'monthlymaint';

export const JOBS: Record<JobName, string[]> = {
  hourlymaint: ['numberlocks', 'bans'],
  dailymaint: ['pins', 'cdrs', 'reconcile', 'housekeeping', 'report'],
  weeklymaint: ['integrity', 'housekeeping'],
  monthlymaint: ['jobruns', 'reports', 'deadpins', 'imessages'],
};
