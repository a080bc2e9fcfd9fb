/**
 * bench/numbers: the DID pool on SQLite (and PostgreSQL when VOXSWITCH_BENCH_PG=postgres://… names an empty
 * database): addNumbers of 10000, then getPhoneNumber for N users with C in parallel (every call a claim race),
 * and lockPhoneNumber. Prints operations/s. Usage: node dist/bench/numbers/run.js [N] [C]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage } from '../../src/storage/db.js';
import { ConfigStore } from '../../src/config/store.js';
import { NumberService } from '../../src/domain/numbers/service.js';

const N = Number(process.argv[2] ?? 5000);
const C = Number(process.argv[3] ?? 50);

async function timed(label: string, ops: number, fn: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  process.stdout.write(`${label.padEnd(44)} ${ops} ops in ${ms.toFixed(0)} ms = ${((ops * 1000) / ms).toFixed(0)}/s\n`);
}

async function parallel(count: number, conc: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

async function bench(label: string, dburl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-bench-numbers-'));
  const storage = await openStorage(dburl, dir);
  try {
    const s = new NumberService(storage.db, new ConfigStore(dir, {}));
    process.stdout.write(`--- ${label} (${storage.describe}), N=${N}, parallel=${C}\n`);
    await timed(
      'addNumbers (one request of 10000)',
      10000,
      async () => void (await s.addNumbers(NumberService.parseNumberList('', '3610000000', '10000'))),
    );
    let got = 0;
    await timed(`getPhoneNumber, ${C} in parallel`, Math.min(N, 10000), () =>
      parallel(Math.min(N, 10000), C, async (i) => {
        await s.getPhoneNumber(100000 + i);
        got++;
      }),
    );
    if (got !== Math.min(N, 10000)) throw new Error(`expected ${Math.min(N, 10000)} assignments, got ${got}`);
    await s.addNumbers(NumberService.parseNumberList('', '3620000000', '10000'));
    await timed(`lockPhoneNumber, ${C} in parallel`, Math.min(N, 10000), () =>
      parallel(Math.min(N, 10000), C, (i) => s.lockPhoneNumber(200000 + i)),
    );
    await timed(`getPhoneNumber (already assigned), ${C} in parallel`, N, () =>
      parallel(N, C, (i) => s.getPhoneNumber(100000 + (i % 10000))),
    );
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await bench('SQLite', '');
if (process.env.VOXSWITCH_BENCH_PG) await bench('PostgreSQL', process.env.VOXSWITCH_BENCH_PG);
