/** What a backup file holds: the names inside it and its manifest (what was backed up, from where, how many rows). */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Dialect } from '../../storage/dialect.js';

export const BACKUP_FILES = {
  manifest: 'manifest.json',
  sqlite: 'voxswitch.db',
  pg: 'voxswitch.pgdump',
  key: 'server.key',
  device: 'device.id',
  config: 'voxswitch.conf',
} as const;

export interface Manifest {
  format: 1;
  dialect: Dialect;
  created: string;
  node: string;
  version: string;
  files: string[];
  /** Rows when the backup started (the online backup may hold a few more). */
  counts: { users: number; ledger: number; cdrs: number };
}

export async function countRows(db: Kysely<Database>): Promise<Manifest['counts']> {
  const n = async (t: 'tb_users' | 'tb_ledger' | 'tb_cdrs') =>
    Number(
      (
        await db
          .selectFrom(t)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { users: await n('tb_users'), ledger: await n('tb_ledger'), cdrs: await n('tb_cdrs') };
}

/** Checks a parsed manifest; answers why it is not one of ours, or null. */
export function manifestProblem(m: unknown): string | null {
  const x = m as Partial<Manifest> | null;
  if (!x || typeof x !== 'object') return 'no manifest';
  if (x.format !== 1) return `unknown backup format ${String(x.format)}`;
  if (x.dialect !== 'sqlite' && x.dialect !== 'pg') return 'unknown database kind';
  if (!Array.isArray(x.files) || !x.files.every((f) => Object.values(BACKUP_FILES).includes(f as never)))
    return 'unexpected files listed';
  if (!x.counts || typeof x.counts.users !== 'number') return 'no row counts';
  return null;
}
