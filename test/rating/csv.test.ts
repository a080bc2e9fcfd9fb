import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { ConfigStore } from '../../src/config/store.js';
import { parseCsv, importTariffsCsv, exportTariffsCsv } from '../../src/domain/rating/csv.js';
import { RatingService } from '../../src/domain/rating/service.js';
import { Ledger } from '../../src/domain/billing/ledger.js';
import { CdrService } from '../../src/domain/billing/cdrs.js';
import { freshPgDatabase } from '../helpers/pg.js';

let dir: string;
let st: Storage;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vx-rating-csv-'));
  st = await openStorage('', dir);
});
after(async () => {
  await st.close();
  rmSync(dir, { recursive: true, force: true });
});

const GOOD = [
  'currency,prefix,destination,price,connectfee,minduration,increment,notes',
  'USD,36,Hungary,0.012,0,60,60,x',
  'USD,3620,"Hungary, mobile",0.05,0.01,,30/6,"quoted ""note"", with comma"',
  'USD,+1,"USA / Canada",0.007,0,1,1,',
  '',
].join('\r\n');

test('CSV parser: quotes, escaped quotes, commas and newlines in quotes, CRLF, BOM, line numbers', () => {
  const recs = [...parseCsv('\ufeffa,b\r\n"x,1","say ""hi"""\n"multi\nline",z\n\nlast,')];
  assert.deepEqual(recs, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x,1', 'say "hi"'] },
    { line: 3, fields: ['multi\nline', 'z'] },
    { line: 6, fields: ['last', ''] },
  ]);
  assert.throws(() => [...parseCsv('a,"open\n')], /unterminated/);
});

test('import good rows (A/B increments, quoted fields, extra columns), then rate them', async () => {
  const progress: number[] = [];
  const r = await importTariffsCsv(st.db, GOOD, { plan: 'p1', onProgress: (d) => progress.push(d) });
  assert.deepEqual(r.errors, []);
  assert.equal(r.imported, 3);
  assert.ok(progress.length > 0);
  const rows = await st.db
    .selectFrom('tb_tariffs')
    .selectAll()
    .where('planid', '=', r.planId!)
    .orderBy('prefix')
    .execute();
  assert.deepEqual(
    rows.map((x) => [x.prefix, x.destination, Number(x.price), Number(x.connectfee), x.minduration, x.increment]),
    [
      ['1', 'USA / Canada', 7000, 0, 1, 1],
      ['36', 'Hungary', 12000, 0, 60, 60],
      ['3620', 'Hungary, mobile', 50000, 10000, 30, 6],
    ],
  );
  const rating = new RatingService(st.db, new ConfigStore(dir, {}));
  assert.deepEqual(await rating.load(), { plans: 1, rates: 3 });
  assert.equal(rating.lookup(r.planId!, '36201234567')?.destination, 'Hungary, mobile');
  assert.equal(rating.lookup(r.planId!, '3611234567')?.destination, 'Hungary');
});

test('a bad row imports nothing, and every bad row is reported with its line and reason', async () => {
  const before = await st.db
    .selectFrom('tb_tariffs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const bad = [
    'prefix,destination,price,connectfee,minduration,increment,currency',
    '44,UK,0.02,0,1,1,USD',
    '44x,UK bad,0.02,0,1,1,USD',
    '45,Denmark,-1,0,1,1,USD',
    '46,Sweden,0.02,0,10,20/5,USD',
    '44,UK again,0.03,0,1,1,USD',
    '47,Norway,0.02,0,1,0,USD',
    '48,Poland,0.02,0,1,1,US',
  ].join('\n');
  const r = await importTariffsCsv(st.db, bad, { plan: 'p2' });
  assert.equal(r.imported, 0);
  assert.deepEqual(
    r.errors.map((e) => e.line),
    [3, 4, 5, 6, 7, 8],
  );
  assert.match(r.errors[0]!.reason, /prefix/);
  assert.match(r.errors[1]!.reason, /price/);
  assert.match(r.errors[2]!.reason, /minduration/);
  assert.match(r.errors[3]!.reason, /already on line 2/);
  assert.match(r.errors[4]!.reason, /increment/);
  assert.match(r.errors[5]!.reason, /currency/);
  const after = await st.db
    .selectFrom('tb_tariffs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  assert.equal(Number(after.n), Number(before.n), 'no row written');
  assert.equal(
    await st.db.selectFrom('tb_tariffplans').select('id').where('name', '=', 'p2').executeTakeFirst(),
    undefined,
    'no plan created',
  );
  const hdr = await importTariffsCsv(st.db, 'prefix,price\n1,0.1\n', { plan: 'p2' });
  assert.match(hdr.errors[0]!.reason, /missing column\(s\) destination, connectfee, minduration, increment, currency/);
});

test('without --replace the file replaces its prefixes only; with replace the whole plan; export round-trips', async () => {
  const upd = await importTariffsCsv(
    st.db,
    'prefix,destination,price,connectfee,minduration,increment,currency\n36,Hungary fixed,0.015,0,60,60,USD\n',
    { plan: 'p1' },
  );
  assert.equal(upd.imported, 1);
  assert.equal(upd.replaced, 1);
  let csv = await exportTariffsCsv(st.db, 'p1');
  assert.match(csv!, /^36,Hungary fixed,0.015,0.00,60,60,USD,,$/m);
  assert.match(csv!, /^3620,"Hungary, mobile",0.05,0.01,30,6,USD,,$/m);
  const rep = await importTariffsCsv(
    st.db,
    'prefix,destination,price,connectfee,minduration,increment,currency,valid_from,valid_to\n49,Germany,0.02,0,1,1,USD,2026-01-01,2027-01-01\n',
    { plan: 'p1', replace: true },
  );
  assert.equal(rep.imported, 1);
  assert.equal(rep.replaced, 3);
  csv = await exportTariffsCsv(st.db, 'p1');
  assert.equal(
    csv,
    'prefix,destination,price,connectfee,minduration,increment,currency,valid_from,valid_to\n49,Germany,0.02,0.00,1,1,USD,2026-01-01T00:00:00.000Z,2027-01-01T00:00:00.000Z\n',
  );
  // the export imports back unchanged
  const again = await importTariffsCsv(st.db, csv!, { plan: 'p1b' });
  assert.deepEqual(again.errors, []);
  assert.equal((await exportTariffsCsv(st.db, 'p1b'))!, csv);
  assert.equal(await exportTariffsCsv(st.db, 'nope'), undefined);
});

test('PostgreSQL: import, rate, and record a call once', async (t) => {
  const pg = await freshPgDatabase();
  if ('skip' in pg) {
    t.skip(pg.skip);
    return;
  }
  const pdir = mkdtempSync(join(tmpdir(), 'vx-rating-pg-'));
  const s = await openStorage(pg.url, pdir);
  try {
    const r = await importTariffsCsv(s.db, GOOD, {});
    assert.deepEqual(r.errors, []);
    assert.equal(r.plan, 'default');
    const bad = await importTariffsCsv(s.db, GOOD + '9x,Bad,1,0,1,1,USD\n', { replace: true });
    assert.equal(bad.errors[0]!.line, 5);
    const rating = new RatingService(s.db, new ConfigStore(pdir, {}));
    assert.deepEqual(await rating.load(), { plans: 1, rates: 3 });
    const u = await s.db
      .insertInto('tb_users')
      .values({
        username: 'pguser',
        password_enc: 'x',
        type: 6,
        parentid: 0,
        name: '',
        email: '',
        phone: '',
        currency: 'USD',
        country: '36',
        address: '',
        pin: null,
        did: null,
        credit: 0,
        enabled: 1,
        created_at: Date.now(),
        tariffid: null,
        forgot_question: null,
        forgot_answer_enc: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const ledger = new Ledger(s.db);
    await ledger.post({ userId: u.id, amount: 1_000_000, reason: 'test' });
    const q = await rating.quote({ id: u.id, country: '36' }, '020 123 4567');
    assert.equal(q.rate.prefix, '3620');
    const cdrs = new CdrService(s.db, ledger, rating);
    const call = {
      callid: 'pg-call-1',
      userId: u.id,
      caller: 'pguser',
      callee: '+36201234567',
      startAt: 1,
      connectAt: 1,
      endAt: 62_000,
      duration: 61,
    };
    const a = await cdrs.recordCall(call);
    const b = await cdrs.recordCall(call);
    assert.equal(a.created, true);
    assert.equal(a.charged, 10_000 + 55_000); // 61 s on 30/6 → 66 s at 0.05/min = 0.055, + 0.01
    assert.equal(b.created, false);
    assert.equal(b.charged, 0);
    assert.equal((await ledger.balance(u.id))!.credit, 1_000_000 - 65_000);
  } finally {
    await s.close();
    await pg.drop();
    rmSync(pdir, { recursive: true, force: true });
  }
});
