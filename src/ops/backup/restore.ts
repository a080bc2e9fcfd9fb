/**
 * `voxswitch restore <file> --data <dir>`: unpacks a backup into a data dir. The archive is unpacked into a
 * staging folder first (only the names a backup holds, plain files only) and checked (manifest, SQLite integrity
 * check and row counts); nothing in the data dir changes until every check has passed, so a corrupt or foreign
 * file leaves it as it was. An existing database or a different server.key is refused unless `force` is given.
 * A PostgreSQL dump is restored with pg_restore into the (empty) database of `dburl`, in one transaction.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { extract as tarExtract } from 'tar';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { DomainError } from '../../domain/errors.js';
import { BACKUP_FILES, manifestProblem, type Manifest } from './manifest.js';
import { pgRestore } from './pgtools.js';

export interface RestoreOptions {
  file: string;
  dataDir: string;
  /** PostgreSQL backups: the database to restore into (it must be empty). */
  dburl?: string;
  /** Replace an existing SQLite database / a different server.key. */
  force?: boolean;
}

export interface RestoreResult {
  manifest: Manifest;
  restored: string[];
  counts: Manifest['counts'];
}

const ALLOWED = new Set<string>(Object.values(BACKUP_FILES));

function unpack(file: string, staging: string): Promise<void> {
  return tarExtract({
    file,
    cwd: staging,
    strict: true,
    filter: (path, entry) => ALLOWED.has(path) && (entry as { type?: string }).type === 'File',
  });
}

function sqliteCheck(file: string): Manifest['counts'] {
  let db: SqliteDatabase.Database | undefined;
  try {
    db = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(`integrity check: ${String(check)}`);
    const n = (t: string) => Number((db!.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n);
    return { users: n('tb_users'), ledger: n('tb_ledger'), cdrs: n('tb_cdrs') };
  } catch (e) {
    throw new DomainError(`the backup's database is damaged: ${(e as Error).message}`);
  } finally {
    db?.close();
  }
}

async function pgIsEmpty(dburl: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: dburl, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    const r = await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'tb_users'");
    return Number(r.rows[0].n) === 0;
  } finally {
    await c.end();
  }
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(o.dataDir);
  if (!existsSync(o.file)) throw new DomainError(`${o.file}: no such backup file`, 'notfound');
  mkdirSync(dataDir, { recursive: true });
  const staging = join(dataDir, `.restore-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { mode: 0o700 });
  try {
    try {
      await unpack(o.file, staging);
    } catch (e) {
      throw new DomainError(`${o.file} is not a readable voxswitch backup (${(e as Error).message})`);
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(readFileSync(join(staging, BACKUP_FILES.manifest), 'utf8')) as Manifest;
    } catch {
      throw new DomainError(`${o.file} is not a voxswitch backup: it has no readable manifest.json`);
    }
    const problem = manifestProblem(manifest);
    if (problem) throw new DomainError(`${o.file} is not a voxswitch backup: ${problem}`);
    const missing = manifest.files.filter((f) => !existsSync(join(staging, f)));
    if (missing.length) throw new DomainError(`the backup is incomplete: ${missing.join(', ')} missing`);
    const keyFile = join(dataDir, BACKUP_FILES.key);
    if (existsSync(join(staging, BACKUP_FILES.key)) && existsSync(keyFile) && !o.force) {
      const same =
        readFileSync(keyFile, 'utf8').trim() === readFileSync(join(staging, BACKUP_FILES.key), 'utf8').trim();
      if (!same)
        throw new DomainError(
          `${keyFile} differs from the backup's key (the stored passwords need the backup's): ` +
            'use --force to replace it',
        );
    }
    let counts: Manifest['counts'];
    const restored: string[] = [];
    if (manifest.dialect === 'sqlite') {
      counts = sqliteCheck(join(staging, BACKUP_FILES.sqlite));
      if (counts.users < manifest.counts.users || counts.cdrs < manifest.counts.cdrs)
        throw new DomainError('the backup holds fewer rows than its manifest says: it is damaged');
      const dbFile = join(dataDir, BACKUP_FILES.sqlite);
      if (existsSync(dbFile) && !o.force)
        throw new DomainError(`${dbFile} exists: restore into a fresh data dir, or use --force to replace it`);
      for (const f of [`${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
    } else {
      if (!o.dburl || !/^postgres(ql)?:\/\//.test(o.dburl))
        throw new DomainError('a PostgreSQL backup restores into a database: give --dburl postgres://…');
      if (!(await pgIsEmpty(o.dburl)))
        throw new DomainError('the database of --dburl already has voxswitch tables: restore into an empty database');
      try {
        await pgRestore(o.dburl, join(staging, BACKUP_FILES.pg));
      } catch (e) {
        throw new DomainError(`pg_restore refused the backup (nothing restored): ${(e as Error).message}`);
      }
      counts = manifest.counts;
      restored.push(`database ${new URL(o.dburl).pathname.slice(1)}`);
    }
    // every check passed: move the files in (the database first, the key with it)
    for (const f of manifest.files) {
      if (f === BACKUP_FILES.pg) continue;
      renameSync(join(staging, f), join(dataDir, f));
      restored.push(f);
    }
    return { manifest, restored, counts };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
