/** `voxswitch backup` and `voxswitch restore <file> --data <dir>` (src/ops/backup). */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { ConfigStore, parseSetArgs } from '../config/store.js';
import { openStorage } from '../storage/db.js';
import { BackupService } from '../ops/backup/backup.js';
import { restoreBackup } from '../ops/backup/restore.js';
import { VERSION } from '../server.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function fail(e: unknown): never {
  process.stderr.write(`voxswitch: ${(e as Error).message}\n`);
  process.exit(1);
}

export function backupCommand(): Command {
  return new Command('backup')
    .description('write an online backup of a data dir (database, server.key, device.id, config) to its backups/')
    .option('--data-dir <dir>', 'data dir', './data')
    .option('--set <name=value>', 'override an option, e.g. backuptarget (repeatable)', collect, [])
    .action(async (o: { dataDir: string; set: string[] }) => {
      try {
        const dataDir = resolve(o.dataDir);
        const config = new ConfigStore(dataDir, parseSetArgs(o.set));
        const storage = await openStorage(config.get('dburl'), dataDir);
        const log = pino({ level: 'silent' });
        const b = new BackupService({
          storage,
          dataDir,
          log,
          node: 'cli',
          version: VERSION,
          options: () => config.options,
        });
        try {
          const r = await b.run();
          process.stdout.write(`wrote ${r.file} (${r.bytes} bytes, ${r.ms} ms)\n`);
          if (r.target && !r.target.ok) throw new Error(r.target.error);
          if (r.target?.ok) process.stdout.write(`copied to ${r.target.file}\n`);
        } finally {
          await storage.close();
        }
      } catch (e) {
        fail(e);
      }
    });
}

export function restoreCommand(): Command {
  return new Command('restore')
    .description('restore a backup file into a data dir (a fresh one, or --force); then start voxswitch on it')
    .argument('<file>', 'a backup written by "voxswitch backup" or the backup API (voxswitch-….tar.gz)')
    .option('--data <dir>', 'the data dir to restore into')
    .option('--data-dir <dir>', 'the same as --data')
    .option('--dburl <url>', 'PostgreSQL backups: the empty database to restore into')
    .option('--force', 'replace an existing database and server.key', false)
    .action(async (file: string, o: { data?: string; dataDir?: string; dburl?: string; force: boolean }) => {
      const dir = o.data ?? o.dataDir;
      if (!dir) fail(new Error('restore: give the data dir with --data <dir>'));
      try {
        const r = await restoreBackup({ file: resolve(file), dataDir: resolve(dir), dburl: o.dburl, force: o.force });
        const c = r.counts;
        process.stdout.write(
          `restored ${r.restored.join(', ')} from ${r.manifest.created} (${r.manifest.node}): ${c.users} users, ` +
            `${c.ledger} ledger entries, ${c.cdrs} CDRs\n`,
        );
        if (r.manifest.dialect === 'pg')
          process.stdout.write(`start it with: voxswitch serve --data-dir ${dir} --set dburl=<the --dburl>\n`);
      } catch (e) {
        fail(e);
      }
    });
}
