/**
 * Online backups: the database (SQLite through its online backup API, consistent while the server writes;
 * PostgreSQL through `pg_dump -Fc`), the data dir's `server.key` (the stored passwords are encrypted with it: a
 * backup without it could not be used), `device.id` and `voxswitch.conf`, with a manifest, in one gzipped tar file
 * `<datadir>/backups/voxswitch-<UTC time>.tar.gz` (owner-only, like the key). The newest `backupkeep` are kept.
 *
 * The "second server" is a folder (`backuptarget`, e.g. a mount of another host): each backup is copied there
 * atomically (written under a temporary name, then renamed) and rotated the same way. A target that cannot be
 * written leaves the local backup in place and is reported in the answer and the log.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import type { Logger } from 'pino';
import type { Storage } from '../../storage/db.js';
import { DomainError } from '../../domain/errors.js';
import { pgDump } from './pgtools.js';
import { countRows, type Manifest, BACKUP_FILES } from './manifest.js';

const NAME = /^voxswitch-\d{8}T\d{9}Z\.tar\.gz$/;

export interface BackupDeps {
  storage: Storage;
  dataDir: string;
  log: Logger;
  node: string;
  version: string;
  /** backupkeep and backuptarget, read at each backup (reload applies them). */
  options: () => { backupkeep: number; backuptarget: string };
}

export interface BackupResult {
  name: string;
  file: string;
  bytes: number;
  ms: number;
  counts: Manifest['counts'];
  /** Old backups removed by the rotation (local). */
  removed: string[];
  /** Where the copy went, or why it did not. */
  target?: { ok: true; file: string } | { ok: false; error: string };
}

export interface BackupEntry {
  name: string;
  bytes: number;
  at: number;
}

/** 20261202T064640123Z */
function stamp(t: number): string {
  return new Date(t).toISOString().replace(/[-:.]/g, '');
}

export class BackupService {
  private running = false;

  constructor(private readonly d: BackupDeps) {}

  get dir(): string {
    return join(this.d.dataDir, 'backups');
  }

  get busy(): boolean {
    return this.running;
  }

  list(dir = this.dir): BackupEntry[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((n) => NAME.test(n))
      .sort()
      .map((name) => {
        const st = statSync(join(dir, name));
        return { name, bytes: st.size, at: st.mtimeMs };
      });
  }

  async run(): Promise<BackupResult> {
    if (this.running) throw new DomainError('a backup is already running in this process', 'conflict');
    this.running = true;
    try {
      return await this.make();
    } finally {
      this.running = false;
    }
  }

  private async make(): Promise<BackupResult> {
    const t0 = Date.now();
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const name = `voxswitch-${stamp(t0)}.tar.gz`;
    const staging = join(this.dir, `.staging-${stamp(t0)}-${process.pid}`);
    mkdirSync(staging, { mode: 0o700 });
    const final = join(this.dir, name);
    const part = `${final}.part`;
    try {
      const counts = await countRows(this.d.storage.db);
      const dbFile = this.d.storage.dialect === 'sqlite' ? BACKUP_FILES.sqlite : BACKUP_FILES.pg;
      if (this.d.storage.sqlite) await this.d.storage.sqlite.raw.backup(join(staging, dbFile));
      else await pgDump(this.d.storage.location, join(staging, dbFile));
      const files: string[] = [dbFile];
      for (const f of [BACKUP_FILES.key, BACKUP_FILES.device, BACKUP_FILES.config]) {
        if (!existsSync(join(this.d.dataDir, f))) continue;
        copyFileSync(join(this.d.dataDir, f), join(staging, f));
        files.push(f);
      }
      const manifest: Manifest = {
        format: 1,
        dialect: this.d.storage.dialect,
        created: new Date(t0).toISOString(),
        node: this.d.node,
        version: this.d.version,
        files,
        counts,
      };
      writeFileSync(join(staging, BACKUP_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
      await tarCreate({ gzip: true, file: part, cwd: staging, portable: true }, [BACKUP_FILES.manifest, ...files]);
      chmodSync(part, 0o600);
      renameSync(part, final);
      const removed = this.rotate(this.dir);
      const result: BackupResult = {
        name,
        file: final,
        bytes: statSync(final).size,
        ms: Date.now() - t0,
        counts,
        removed,
      };
      const target = this.d.options().backuptarget;
      if (target) result.target = this.copyToTarget(final, name, target);
      this.d.log.info(
        { backup: name, bytes: result.bytes, ms: result.ms, counts, removed, target: result.target },
        'backup written',
      );
      if (result.target && !result.target.ok)
        this.d.log.error({ backup: name, target, error: result.target.error }, 'backup not copied to backuptarget');
      return result;
    } catch (e) {
      rmSync(part, { force: true });
      this.d.log.error({ err: (e as Error).message }, 'backup failed');
      throw e instanceof DomainError ? e : new DomainError(`backup failed: ${(e as Error).message}`, 'unavailable');
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /** Keeps the newest `backupkeep` backups of a folder; answers the names removed. */
  private rotate(dir: string): string[] {
    const keep = this.d.options().backupkeep;
    const all = this.list(dir);
    const gone = all.slice(0, Math.max(0, all.length - keep)).map((b) => b.name);
    for (const n of gone) rmSync(join(dir, n), { force: true });
    return gone;
  }

  private copyToTarget(file: string, name: string, target: string): BackupResult['target'] {
    const part = join(target, `.${name}.part`);
    try {
      if (!statSync(target).isDirectory()) throw new Error('not a folder');
      copyFileSync(file, part);
      chmodSync(part, 0o600);
      renameSync(part, join(target, name));
      this.rotate(target);
      return { ok: true, file: join(target, name) };
    } catch (e) {
      rmSync(part, { force: true });
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'it does not exist (is the other server mounted?)' : err.message;
      return { ok: false, error: `backuptarget ${target} cannot be written: ${why}; the local backup is kept` };
    }
  }
}
