/**
 * bench/rating: 100,000 random prefixes imported from CSV into SQLite (one transaction), loaded into the
 * in-memory index, then longest-prefix look-ups in-process (target ≥ 1,000,000/s), also with normalisation.
 * Then runs bench/money (transfercredit calls/s through the HTTP API on SQLite) unless --no-transfers.
 * Usage: npm run bench:rating [-- prefixes seconds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openStorage } from '../../src/storage/db.js';
import { ConfigStore } from '../../src/config/store.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { RatingService } from '../../src/domain/rating/service.js';

const N = Number(process.argv[2] ?? 100_000);
const SECONDS = Number(process.argv[3] ?? 2);

let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const digits = (n: number) => {
  let s = String(1 + Math.floor(rnd() * 9));
  while (s.length < n) s += String(Math.floor(rnd() * 10));
  return s;
};

const dir = mkdtempSync(join(tmpdir(), 'vx-bench-rating-'));
try {
  const storage = await openStorage('', dir);
  const seen = new Set<string>();
  const lines = ['prefix,destination,price,connectfee,minduration,increment,currency'];
  while (seen.size < N) {
    const p = digits(1 + Math.floor(rnd() * 8));
    if (seen.has(p)) continue;
    seen.add(p);
    lines.push(`${p},Dest ${p},0.${String(Math.floor(rnd() * 100000)).padStart(5, '0')},0,1,1,USD`);
  }
  let t0 = performance.now();
  const r = await importTariffsCsv(storage.db, lines.join('\n'), { plan: 'default' });
  if (r.errors.length) throw new Error(JSON.stringify(r.errors.slice(0, 3)));
  console.log(
    `import: ${r.imported} rows in ${((performance.now() - t0) / 1000).toFixed(2)} s (SQLite, one transaction)`,
  );
  const rating = new RatingService(storage.db, new ConfigStore(dir, {}));
  t0 = performance.now();
  const loaded = await rating.load();
  console.log(
    `load: ${loaded.rates} rates in ${((performance.now() - t0) / 1000).toFixed(2)} s; heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MB`,
  );
  const planId = rating.plan('default')!.id;

  const numbers = Array.from({ length: 65_536 }, () => digits(11));
  const dialled = numbers.map((n) => `+${n.slice(0, 2)} ${n.slice(2, 5)}-${n.slice(5)}`);
  const now = Date.now();
  let hits = 0;
  const run = (label: string, fn: (i: number) => unknown) => {
    for (let i = 0; i < 200_000; i++) fn(i & 65535); // warm-up
    let ops = 0;
    const start = performance.now();
    const end = start + SECONDS * 1000;
    while (performance.now() < end) {
      for (let i = 0; i < 100_000; i++) if (fn((ops + i) & 65535)) hits++;
      ops += 100_000;
    }
    const s = (performance.now() - start) / 1000;
    console.log(`${label}: ${Math.round(ops / s).toLocaleString('en-US')} look-ups/s`);
  };
  run(`lookup (${N} prefixes, E.164 digits)`, (i) => rating.lookup(planId, numbers[i]!, now));
  run(`normalise + lookup ("+36 201-234567" style)`, (i) => rating.lookup(planId, rating.normalize(dialled[i]!), now));
  console.log(`(matched ${hits} look-ups)`);
  await storage.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// The issue asks this bench to print transfercredit calls/s through the API as well: run bench/money's HTTP load.
if (!process.argv.includes('--no-transfers')) {
  const money = fileURLToPath(new URL('../money/run.js', import.meta.url));
  console.log('\ntransfercredit through the HTTP API (bench/money):');
  const r = spawnSync(process.execPath, [money, String(Math.max(SECONDS, 5))], { stdio: 'inherit' });
  if (r.status) process.exitCode = r.status;
}
