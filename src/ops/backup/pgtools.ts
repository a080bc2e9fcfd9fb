/**
 * PostgreSQL's own tools for backup and restore: `pg_dump -Fc` and `pg_restore`, spawned with an argument array
 * (never a shell). The password travels in PGPASSWORD (from the URL), never on the command line.
 */
import { spawn } from 'node:child_process';

/** The URL without its password, and the password (for PGPASSWORD). */
export function splitPassword(dburl: string): { url: string; password?: string } {
  const u = new URL(dburl);
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.password = '';
  return { url: u.toString(), password };
}

/** Runs a PostgreSQL tool; rejects with its last lines of stderr (never the password) when it fails. */
export function runPgTool(tool: 'pg_dump' | 'pg_restore', args: string[], dburl: string): Promise<void> {
  const { password } = splitPassword(dburl);
  const env = { ...process.env, PGAPPNAME: 'voxswitch-backup', ...(password ? { PGPASSWORD: password } : {}) };
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-4000);
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === 'ENOENT'
            ? `${tool} is not installed (Debian package postgresql-client): PostgreSQL backups need it`
            : `${tool}: ${e.message}`,
        ),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${tool} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' / ')}`));
    });
  });
}

export function pgDump(dburl: string, file: string): Promise<void> {
  const { url } = splitPassword(dburl);
  return runPgTool('pg_dump', ['--format=custom', '--no-password', '--file', file, '--dbname', url], dburl);
}

/** Restores a dump into the (empty) database of `dburl`; objects are created owned by the connecting role. */
export function pgRestore(dburl: string, file: string): Promise<void> {
  const { url } = splitPassword(dburl);
  const args = ['--no-password', '--no-owner', '--exit-on-error', '--single-transaction', '--dbname', url, file];
  return runPgTool('pg_restore', args, dburl);
}
