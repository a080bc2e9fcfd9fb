/**
 * bench/users: `search` and `getfield` through the in-process API pipeline on SQLite with 20,000 accounts
 * (one reseller with 2,000 below it in three levels). Prints calls/s and the mean latency of each case.
 * Usage: node <build>/bench/users/search.js [iterations]
 */
import { startTestServer } from '../../test/helpers/server.js';
import { req, src } from '../../test/helpers/source.js';
import { SecretBox } from '../../src/domain/accounts/secrets.js';

const N = Number(process.argv[2] ?? 500);
const TOTAL = 20_000;

async function main(): Promise<void> {
  const t = await startTestServer({ apilimitip: '0', apilimituser: '0' });
  try {
    const db = t.srv.services.storage.db;
    const box = SecretBox.fromDataDir(t.dataDir);
    const enc = box.encrypt('Bench-pass-1');
    const base = {
      password_enc: enc,
      email: '',
      phone: '',
      currency: 'USD',
      country: '',
      address: '',
      pin: null,
      did: null,
      credit: 0,
      enabled: 1,
      created_at: 0,
    };
    const rita = await db
      .insertInto('tb_users')
      .values({ ...base, username: 'rita', type: 4, parentid: 1, name: 'Rita' })
      .returning('id')
      .executeTakeFirstOrThrow();
    // level 1: 20 sub-resellers; level 2: 100 users each (2,000); the rest under the server admin
    const subs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await db
        .insertInto('tb_users')
        .values({ ...base, username: `sub${i}`, type: 4, parentid: rita.id, name: `Sub ${i}` })
        .returning('id')
        .executeTakeFirstOrThrow();
      subs.push(r.id);
    }
    const rows = [];
    for (let i = 0; i < TOTAL - 21; i++) {
      const parent = i < 2000 ? subs[i % 20]! : 1;
      rows.push({
        ...base,
        username: `user${i}`,
        type: 6,
        parentid: parent,
        name: `User Number ${i}`,
        email: `user${i}@example.com`,
        phone: `36${String(100000000 + i)}`,
      });
    }
    for (let i = 0; i < rows.length; i += 500)
      await db
        .insertInto('tb_users')
        .values(rows.slice(i, i + 500))
        .execute();

    const REMOTE = src('203.0.113.7');
    const LOCAL = src('127.0.0.1');
    const auth = (u: string) => ({ authkey: 'test-api-key-123', authid: u, authpwd: 'Bench-pass-1' });
    const cases: Array<[string, () => Promise<unknown>]> = [
      [
        'search admin substring "number 1999" (whole base)',
        () => t.srv.gateway.handle(req('search', { txt: 'number 1999' }, LOCAL)),
      ],
      [
        'search reseller subtree "user19" (2,021 of 20,000)',
        () => t.srv.gateway.handle(req('search', { ...auth('rita'), txt: 'user19' }, REMOTE)),
      ],
      [
        'search end user exact "user15000"',
        () => t.srv.gateway.handle(req('search', { ...auth('user5'), txt: 'user15000' }, REMOTE)),
      ],
      [
        'getfield by username',
        () => t.srv.gateway.handle(req('getfield', { retfieldname: 'name', filterfieldvalue: 'user12345' }, LOCAL)),
      ],
    ];
    for (const [name, fn] of cases) {
      const r = (await fn()) as { ok: boolean; text: string; rows?: unknown[] };
      if (!r.ok) throw new Error(`${name}: ${r.text}`);
      const start = process.hrtime.bigint();
      for (let i = 0; i < N; i++) await fn();
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(
        `${name}: ${(N / (ms / 1000)).toFixed(0)} calls/s, ${(ms / N).toFixed(3)} ms/call, ${r.rows?.length ?? 1} row(s)`,
      );
    }
  } finally {
    await t.srv.services.dbRunner.close();
    await t.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
