/**
 * `voxswitch tariffs import FILE [--plan NAME] [--data-dir DIR] [--replace]` and
 * `voxswitch tariffs export [--plan NAME] [--data-dir DIR] [--out FILE]`.
 * Opens the storage of the data dir itself (as `serve` does). A running server applies imported rates after
 * `reload` (API) or SIGHUP.
 */
import { Command } from 'commander';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigStore } from '../config/store.js';
import { openStorage, type Storage } from '../storage/db.js';
import { importTariffsCsv, exportTariffsCsv } from '../domain/rating/csv.js';
import { DEFAULT_PLAN } from '../domain/rating/service.js';

async function withStorage<T>(dataDir: string, fn: (s: Storage) => Promise<T>): Promise<T> {
  const dir = resolve(dataDir);
  if (!existsSync(dir)) throw new Error(`data dir ${dir} does not exist`);
  const config = new ConfigStore(dir, {});
  const storage = await openStorage(config.get('dburl'), dir);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

function die(msg: string): never {
  process.stderr.write(`voxswitch tariffs: ${msg}\n`);
  process.exit(1);
}

export function tariffsCommand(): Command {
  const cmd = new Command('tariffs').description(
    'import and export tariff plans (CSV: prefix,destination,price,connectfee,minduration,increment,currency)',
  );

  cmd
    .command('import')
    .description(
      'import a tariff CSV into a plan (all rows or none); the plan "default" applies to every user without a plan',
    )
    .argument('<file>', 'CSV file with a header row')
    .option('--plan <name>', 'tariff plan (created when missing)', DEFAULT_PLAN)
    .option('--data-dir <dir>', 'data dir', './data')
    .option('--replace', 'replace all rows of the plan (default: replace only the prefixes in the file)', false)
    .action(async (file: string, o: { plan: string; dataDir: string; replace: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        die(`cannot read ${file}: ${(e as Error).message}`);
      }
      try {
        const tty = process.stderr.isTTY;
        let last = 0;
        const r = await withStorage(o.dataDir, (s) =>
          importTariffsCsv(s.db, text, {
            plan: o.plan,
            replace: o.replace,
            onProgress: (done, total, phase) => {
              const now = Date.now();
              if (now - last < 250 && done < total) return;
              last = now;
              const line =
                `${phase === 'check' ? 'checking' : 'writing'} ${done}/${total} rows ` +
                `(${Math.floor((done * 100) / Math.max(1, total))}%)`;
              process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
            },
          }),
        );
        if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
        if (r.errors.length) {
          for (const e of r.errors) process.stderr.write(`${file}:${e.line}: ${e.reason}\n`);
          die(`${r.errors.length}${r.errors.length >= 100 ? '+' : ''} bad row(s): nothing imported`);
        }
        process.stdout.write(
          `imported ${r.imported} rates into plan "${r.plan}"` +
            `${r.replaced ? ` (${r.replaced} old rows replaced)` : ''}; ` +
            `a running server applies them after "reload" (API) or SIGHUP\n`,
        );
      } catch (e) {
        die((e as Error).message);
      }
    });

  cmd
    .command('export')
    .description('write a tariff plan as CSV (to stdout or --out)')
    .option('--plan <name>', 'tariff plan', DEFAULT_PLAN)
    .option('--data-dir <dir>', 'data dir', './data')
    .option('--out <file>', 'output file (default: stdout)')
    .action(async (o: { plan: string; dataDir: string; out?: string }) => {
      try {
        const csv = await withStorage(o.dataDir, (s) => exportTariffsCsv(s.db, o.plan));
        if (csv === undefined) die(`no tariff plan "${o.plan}"`);
        if (o.out) {
          writeFileSync(o.out, csv);
          process.stderr.write(`wrote ${csv.split('\n').length - 2} rates of plan "${o.plan}" to ${o.out}\n`);
        } else process.stdout.write(csv);
      } catch (e) {
        die((e as Error).message);
      }
    });

  return cmd;
}
