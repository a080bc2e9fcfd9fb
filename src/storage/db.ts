/**
 * Opens the database: SQLite (better-sqlite3, a file in the data dir) by default, PostgreSQL when dburl is
 * postgres://…; one query builder (kysely) over both, migrated to the latest schema on open.
 */
import { Kysely, SqliteDialect, PostgresDialect, Migrator, type MigrationProvider, CompiledQuery } from 'kysely';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { join } from 'node:path';
import { closeSync, chmodSync, existsSync, openSync, statSync } from 'node:fs';
import type { Database } from './schema.js';
import { migrations } from './migrations.js';
import type { Dialect } from './dialect.js';

export type { Dialect } from './dialect.js';

export interface Storage {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where the data lives, without credentials (for `info`). */
  describe: string;
  /** SQLite file path (custom SQL runs in a child process that opens it), or the PostgreSQL URL. */
  location: string;
  close(): Promise<void>;
}

// PostgreSQL BIGINT (money in micro-units, timestamps) fits a JS number; read it as one.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openStorage(dburl: string, dataDir: string): Promise<Storage> {
  let db: Kysely<Database>;
  let dialect: Dialect;
  let describe: string;
  let location: string;
  if (dburl.startsWith('postgres://') || dburl.startsWith('postgresql://')) {
    dialect = 'pg';
    // a lost connection fails its query (callers refuse new work or queue a CDR), never the process; a connection
    // attempt gives up after 5 s. An idle connection the server closed (restart, pg_terminate_backend, a database
    // dropped WITH (FORCE)) is reported on the pool after it was dropped; the next query opens a new one.
    const pool = new pg.Pool({ connectionString: dburl, max: 10, connectionTimeoutMillis: 5000 });
    pool.on('error', () => undefined);
    // a client in use whose connection drops emits 'error' too (its query fails with it)
    pool.on('connect', (client) => client.on('error', () => undefined));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const u = new URL(dburl);
    describe = `postgresql ${u.hostname}:${u.port || 5432}${u.pathname}`;
    location = dburl;
  } else if (dburl === '' || dburl.startsWith('sqlite:')) {
    dialect = 'sqlite';
    const file = dburl.startsWith('sqlite:') ? dburl.slice('sqlite:'.length) : join(dataDir, 'voxswitch.db');
    restrictFile(file);
    const raw = new SqliteDatabase(file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(raw) }) });
    describe = `sqlite ${file}`;
    location = file;
  } else {
    throw new Error(
      `option "dburl": expected empty (SQLite), sqlite:FILE or postgres://…, got ` +
        `"${dburl.replace(/\/\/[^@]*@/, '//***@')}"`,
    );
  }
  await migrate(db, dialect);
  return { db, dialect, describe, location, close: () => db.destroy() };
}

/**
 * The database holds password hashes and balances: its file is created owner-only (0600), and an existing one
 * readable by others is tightened. SQLite creates the -wal and -shm files with the database file's mode.
 */
function restrictFile(file: string): void {
  if (file === ':memory:') return;
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f) && (statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
  }
}

/**
 * better-sqlite3 compiles SQL on every prepare(); kysely prepares each query anew. Caching the prepared
 * statements by their text (bounded) takes that off the hot path. Safe because kysely runs one query at a
 * time on its single SQLite connection.
 */
function withStatementCache(raw: SqliteDatabase.Database): SqliteDatabase.Database {
  const cache = new Map<string, SqliteDatabase.Statement>();
  const wrapper = Object.create(raw) as SqliteDatabase.Database;
  wrapper.prepare = ((sqlText: string) => {
    let st = cache.get(sqlText);
    if (!st) {
      st = raw.prepare(sqlText);
      if (cache.size >= 500) cache.delete(cache.keys().next().value!);
      cache.set(sqlText, st);
    }
    return st;
  }) as SqliteDatabase.Database['prepare'];
  wrapper.close = () => raw.close();
  return wrapper;
}

export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  const all = migrations(dialect);
  const provider: MigrationProvider = { getMigrations: async () => all };
  const { error } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** Runs a raw statement (administrative only; parameters bound, never spliced). */
export async function rawQuery<R>(db: Kysely<Database>, text: string, params: unknown[]): Promise<R[]> {
  const r = await db.executeQuery<R>(CompiledQuery.raw(text, params));
  return r.rows;
}
