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
  /** SQLite: the open connection (online backup, PRAGMAs, reopen); undefined on PostgreSQL. */
  sqlite?: SqliteHandle;
  /** PostgreSQL: the connection pool (pg_stat_activity, dropping idle connections); undefined on SQLite. */
  pool?: pg.Pool;
  close(): Promise<void>;
}

/**
 * The one SQLite connection behind kysely, reopenable: kysely's SQLite dialect only calls `prepare` and `close` on
 * the object it is given, so that object forwards to whichever connection is open now. Prepared statements are
 * cached by their text (bounded): better-sqlite3 compiles SQL on every prepare() and kysely prepares each query
 * anew. Safe because kysely runs one query at a time on its single SQLite connection.
 */
export class SqliteHandle {
  private cache = new Map<string, SqliteDatabase.Statement>();
  private current: SqliteDatabase.Database;
  /** What kysely's dialect is given. */
  readonly facade: SqliteDatabase.Database;

  constructor(readonly file: string) {
    this.current = SqliteHandle.open(file);
    const prepare = (sqlText: string) => {
      let st = this.cache.get(sqlText);
      if (!st) {
        st = this.current.prepare(sqlText);
        if (this.cache.size >= 500) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(sqlText, st);
      }
      return st;
    };
    this.facade = { prepare, close: () => this.current.close() } as unknown as SqliteDatabase.Database;
  }

  private static open(file: string): SqliteDatabase.Database {
    const raw = new SqliteDatabase(file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('foreign_keys = ON');
    return raw;
  }

  /** The open connection (for the online backup API and PRAGMAs). */
  get raw(): SqliteDatabase.Database {
    return this.current;
  }

  /** Prepared statements held. */
  get cachedStatements(): number {
    return this.cache.size;
  }

  /** Drops the prepared statements (they are compiled again on their next use). */
  clearStatements(): number {
    const n = this.cache.size;
    this.cache = new Map();
    return n;
  }

  /**
   * Closes the connection and opens a new one on the same file. The caller holds kysely's connection (no query or
   * transaction is running); the new connection is opened before the old one is closed, so a failure leaves the
   * old one in use.
   */
  reopen(): void {
    const next = SqliteHandle.open(this.file);
    const old = this.current;
    this.current = next;
    this.cache = new Map();
    old.close();
  }
}

/** application_name of voxswitch's PostgreSQL connections (querylist finds its queries by it). */
export const PG_APPLICATION = 'voxswitch';

// PostgreSQL BIGINT (money in micro-units, timestamps) fits a JS number; read it as one.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openStorage(dburl: string, dataDir: string): Promise<Storage> {
  let db: Kysely<Database>;
  let dialect: Dialect;
  let describe: string;
  let location: string;
  let sqlite: SqliteHandle | undefined;
  let pool: pg.Pool | undefined;
  if (dburl.startsWith('postgres://') || dburl.startsWith('postgresql://')) {
    dialect = 'pg';
    // a lost connection fails its query (callers refuse new work or queue a CDR), never the process; a connection
    // attempt gives up after 5 s. An idle connection the server closed (restart, pg_terminate_backend, a database
    // dropped WITH (FORCE)) is reported on the pool after it was dropped; the next query opens a new one.
    pool = new pg.Pool({
      connectionString: dburl,
      max: 10,
      connectionTimeoutMillis: 5000,
      application_name: PG_APPLICATION,
    });
    pool.on('error', () => undefined);
    // a client in use whose connection drops emits 'error' too (its query fails with it)
    pool.on('connect', (client: pg.PoolClient) => client.on('error', () => undefined));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const u = new URL(dburl);
    describe = `postgresql ${u.hostname}:${u.port || 5432}${u.pathname}`;
    location = dburl;
  } else if (dburl === '' || dburl.startsWith('sqlite:')) {
    dialect = 'sqlite';
    const file = dburl.startsWith('sqlite:') ? dburl.slice('sqlite:'.length) : join(dataDir, 'voxswitch.db');
    restrictFile(file);
    sqlite = new SqliteHandle(file);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite.facade }) });
    describe = `sqlite ${file}`;
    location = file;
  } else {
    throw new Error(
      `option "dburl": expected empty (SQLite), sqlite:FILE or postgres://…, got ` +
        `"${dburl.replace(/\/\/[^@]*@/, '//***@')}"`,
    );
  }
  await migrate(db, dialect);
  return { db, dialect, describe, location, sqlite, pool, close: () => db.destroy() };
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
