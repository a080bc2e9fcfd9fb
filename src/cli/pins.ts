/**
 * `voxswitch pins generate`: makes a batch of recharge PINs directly in the database of a data dir and writes
 * them as CSV (pin,value,currency,expires,batch) to --out or stdout; progress goes to stderr for large batches.
 * The PINs are shown only here: the database keeps their SHA-256.
 */
import { Command } from 'commander';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigStore, parseSetArgs } from '../config/store.js';
import { openStorage } from '../storage/db.js';
import { parseAmount, formatAmount } from '../domain/billing/amount.js';
import { generatePins, MAX_BATCH, PinInputError } from '../domain/billing/pins.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface GenerateOpts {
  count: string;
  value: string;
  currency: string;
  expiresDays?: string;
  name: string;
  out?: string;
  dataDir: string;
  set: string[];
}

function fail(msg: string): never {
  throw new PinInputError(msg);
}

export function pinsCommand(): Command {
  const pins = new Command('pins').description('recharge PINs');
  pins
    .command('generate')
    .description('generate a batch of recharge PINs and write them as CSV (pin,value,currency,expires,batch)')
    .requiredOption('--count <n>', `how many PINs (1-${MAX_BATCH})`)
    .requiredOption('--value <amount>', 'credit each PIN adds, such as 5 or 12.50')
    .requiredOption('--currency <code>', 'currency of the PINs (must match the accounts that use them), such as USD')
    .option('--expires-days <days>', 'days until the PINs expire (default: never)')
    .option('--name <name>', 'name of the batch', '')
    .option('--out <file>', 'write the CSV to this file (mode 0600) instead of stdout')
    .option('--data-dir <dir>', 'data dir', './data')
    .option('--set <name=value>', 'override a config option such as dburl (repeatable)', collect, [])
    .action(async (o: GenerateOpts) => {
      try {
        const count = /^\d{1,7}$/.test(o.count.trim())
          ? Number(o.count.trim())
          : fail(`--count: expected 1 to ${MAX_BATCH}`);
        const value = parseAmount(o.value);
        if (value === undefined || value <= 0) fail('--value: expected an amount above zero such as 5 or 12.50');
        let expiresAt: number | null = null;
        if (o.expiresDays !== undefined) {
          const d = o.expiresDays.trim();
          if (!/^\d{1,5}$/.test(d) || Number(d) < 1) fail('--expires-days: expected a number of days from 1');
          expiresAt = Date.now() + Number(d) * 86_400_000;
        }
        const dataDir = resolve(o.dataDir);
        mkdirSync(dataDir, { recursive: true });
        const config = new ConfigStore(dataDir, parseSetArgs(o.set));
        const storage = await openStorage(config.get('dburl'), dataDir);
        const showProgress = count >= 1000 && !!process.stderr.write;
        let last = 0;
        let result: { batchId: number; pins: string[] };
        try {
          result = await generatePins(storage.db, {
            count,
            value: value!,
            currency: o.currency,
            expiresAt,
            name: o.name,
            createdBy: 0,
            onProgress: (done, total) => {
              if (!showProgress) return;
              const now = Date.now();
              if (done === total || now - last > 250) {
                last = now;
                process.stderr.write(`\rgenerating PINs: ${done}/${total} (${Math.floor((done * 100) / total)}%)`);
                if (done === total) process.stderr.write('\n');
              }
            },
          });
        } finally {
          await storage.close();
        }
        const expires = expiresAt ? new Date(expiresAt).toISOString() : '';
        const v = formatAmount(value!);
        const cur = o.currency.trim().toUpperCase();
        const out: WriteStream | NodeJS.WriteStream = o.out
          ? createWriteStream(resolve(o.out), { mode: 0o600 })
          : process.stdout;
        const write = (s: string) =>
          out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r()));
        await write('pin,value,currency,expires,batch\n');
        const lines: string[] = [];
        for (const pin of result.pins) {
          lines.push(`${pin},${v},${cur},${expires},${result.batchId}\n`);
          if (lines.length >= 1000) await write(lines.splice(0).join(''));
        }
        if (lines.length) await write(lines.join(''));
        if (o.out) {
          await new Promise<void>((res, rej) => (out as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())));
          process.stderr.write(
            `${result.pins.length} PINs of ${v} ${cur} (batch ${result.batchId}) written to ${resolve(o.out)}\n`,
          );
        }
      } catch (e) {
        process.stderr.write(`voxswitch pins: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  return pins;
}
