/**
 * finetune: what it tunes, exactly. SQLite: the page cache of the connection is sized to a quarter of the database
 * file (between 2 and 64 MiB; SQLite's default is 2 MiB) and `PRAGMA optimize` refreshes the query planner's
 * statistics where they are stale. PostgreSQL: ANALYZE (the planner's statistics); the server's memory settings
 * belong to postgresql.conf. Both: the user cache is emptied (it refills with the accounts in use).
 */
import { statSync } from 'node:fs';
import { sql } from 'kysely';
import type { Storage } from '../storage/db.js';

const MIB = 1024 * 1024;

export async function finetune(storage: Storage, clearUserCache: () => void): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const s = storage.sqlite;
  if (s) {
    const bytes = statSync(s.file).size;
    const cacheKiB = Math.round(Math.min(64 * MIB, Math.max(2 * MIB, bytes / 4)) / 1024);
    await storage.db.connection().execute(async () => {
      s.raw.pragma(`cache_size = -${cacheKiB}`);
      s.raw.pragma('optimize');
    });
    out.sqlite_cache = `${cacheKiB} KiB (database ${Math.round(bytes / 1024)} KiB)`;
    out.sqlite_optimize = 'planner statistics refreshed (PRAGMA optimize)';
  } else {
    await sql`ANALYZE`.execute(storage.db);
    out.postgresql_analyze = 'planner statistics refreshed (ANALYZE); memory settings are postgresql.conf';
  }
  clearUserCache();
  out.user_cache = 'emptied (refills on use)';
  return out;
}
