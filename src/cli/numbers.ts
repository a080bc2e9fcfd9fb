/**
 * `voxswitch numbers`: the DID pool from the command line (add, list, del). Opens the data dir's database the
 * way the server does (option dburl of the config file), so it works beside a running server (SQLite WAL or
 * PostgreSQL).
 */
import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigStore } from '../config/store.js';
import { openStorage } from '../storage/db.js';
import { NumberService, NumberServiceError } from '../domain/numbers/service.js';

export interface NumbersIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: NumbersIo = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

async function withService<T>(dataDir: string, io: NumbersIo, fn: (s: NumberService) => Promise<T>): Promise<void> {
  const dir = resolve(dataDir);
  let storage: Awaited<ReturnType<typeof openStorage>> | undefined;
  try {
    mkdirSync(dir, { recursive: true });
    const config = new ConfigStore(dir, {});
    storage = await openStorage(config.get('dburl'), dir);
    await fn(new NumberService(storage.db, config));
  } catch (e) {
    io.err(`voxswitch numbers: ${(e as Error).message}\n`);
    process.exitCode = e instanceof NumberServiceError ? 2 : 1;
  } finally {
    await storage?.close();
  }
}

/** The `numbers` command group (add NUMBERS… [--range FROM:COUNT], list, del NUMBER). */
export function numbersCommand(io: NumbersIo = stdio): Command {
  const cmd = new Command('numbers').description('the phone number (DID) pool: add, list, del');

  cmd
    .command('add')
    .description('add numbers to the free pool (numbers already in the pool are skipped)')
    .argument('[numbers...]', 'phone numbers (digits, optional leading +; commas also separate)')
    .option('--range <from:count>', 'add COUNT consecutive numbers starting at FROM (at most 10000)')
    .option('--data-dir <dir>', 'data dir', './data')
    .action(async (numbers: string[], o: { range?: string; dataDir: string }) => {
      await withService(o.dataDir, io, async (s) => {
        let from: string | undefined;
        let count: string | undefined;
        if (o.range !== undefined) {
          const m = /^\s*(\+?[\d\s-]+):(\d+)\s*$/.exec(o.range);
          if (!m) throw new NumberServiceError(`--range ${o.range}: expected FROM:COUNT, e.g. 3612340000:100`);
          [from, count] = [m[1], m[2]];
        }
        const list = NumberService.parseNumberList(numbers.join(','), from, count);
        const r = await s.addNumbers(list);
        io.out(`added ${r.added} number(s) to the pool${r.skipped ? ` (${r.skipped} already in the pool)` : ''}\n`);
      });
    });

  cmd
    .command('list')
    .description('list the pool: number, status, user, lock expiry')
    .option('--data-dir <dir>', 'data dir', './data')
    .action(async (o: { dataDir: string }) => {
      await withService(o.dataDir, io, async (s) => {
        const rows = await s.listNumbers();
        for (const r of rows) {
          const who = r.status === 'free' ? '' : `\t${r.username || '#' + r.userid}`;
          const until = r.lockedUntil ? `\tuntil ${new Date(r.lockedUntil).toISOString()}` : '';
          io.out(`${r.number}\t${r.status}${who}${until}\n`);
        }
        const free = rows.filter((r) => r.status === 'free').length;
        io.out(`${rows.length} number(s), ${free} free\n`);
      });
    });

  cmd
    .command('del')
    .description('remove a free number from the pool')
    .argument('<number>', 'the number')
    .option('--data-dir <dir>', 'data dir', './data')
    .action(async (number: string, o: { dataDir: string }) => {
      await withService(o.dataDir, io, async (s) => {
        io.out(`number ${await s.deleteNumber(number)} removed from the pool\n`);
      });
    });

  return cmd;
}
