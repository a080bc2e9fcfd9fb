/**
 * Conservation of money under concurrency: thousands of random transfers, PIN charges, credits and debits among
 * ~20 accounts, run concurrently through the services and through the API, on SQLite and on PostgreSQL (where
 * transactions really run in parallel on a pool). Afterwards: the sum of the balances equals what was put in
 * minus what was taken out, no balance is negative, and every balance equals the sum of its ledger entries.
 * Seeded: MONEY_SEED=N reproduces a run (the seed is printed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { freshPgDatabase } from '../helpers/pg.js';
import { req, src } from '../helpers/source.js';
import { generatePins } from '../../src/domain/billing/pins.js';
import { MoneyError } from '../../src/domain/billing/money.js';
import type { User } from '../../src/domain/accounts/users.js';
import { mulberry32 } from '../helpers/random.js';

const OPS = Number(process.env.MONEY_OPS ?? 3000);
const CONCURRENCY = 32;
const ACCOUNTS = 20;

async function scenario(t: TestServer, seed: number): Promise<{ counts: Record<string, number> }> {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const s = t.srv.services;
  const local = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, src('127.0.0.1')));
  assert.ok((await local('newuseri', { u_username: 'res', u_password: 'respw', u_type: 'reseller' })).ok);
  const res = (await s.users.byUsername('res'))!;
  const users: User[] = [];
  let putIn = 0;
  let spent = 0;
  for (let i = 0; i < ACCOUNTS; i++) {
    const r = await local('newuseri', { u_username: `u${i}`, u_password: `pw${i}`, u_parentid: String(res.id) });
    assert.ok(r.ok, r.text);
    users.push((await s.users.byUsername(`u${i}`))!);
    const amount = (1 + int(20)) * 1_000_000;
    await s.money.addCredit(users[i]!.id, amount, 1);
    putIn += amount;
  }
  const { pins } = await generatePins(s.storage.db, {
    count: 400,
    value: 1_250_000,
    currency: 'USD',
    name: 'prop',
    createdBy: 1,
  });
  const counts: Record<string, number> = {};
  const bump = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  const amount = () => 1 + int(3_000_000); // up to 3.00, micro precision
  const fmt = (m: number) => (m / 1e6).toFixed(6);
  const api = (u: number, e: string, p: Record<string, string>) =>
    t.srv.gateway.handle(
      req(e, { authkey: API_KEY, authid: `u${u}`, authpwd: `pw${u}`, ...p }, src(`203.0.113.${10 + u}`)),
    );

  // one op: a closure made from the seeded stream up front (the random choices do not depend on timing)
  const makeOp = (): (() => Promise<void>) => {
    const kind = rnd();
    const a = int(ACCOUNTS);
    let b = int(ACCOUNTS - 1);
    if (b >= a) b++;
    const m = amount();
    const pin = pins[int(pins.length)]!;
    if (kind < 0.5)
      return async () => {
        try {
          await s.money.transfer(users[a]!, `u${b}`, m);
          bump('transfer ok');
        } catch (e) {
          if (!(e instanceof MoneyError) || e.kind !== 'insufficient') throw e;
          bump('transfer refused');
        }
      };
    if (kind < 0.65)
      return async () => {
        const r = await api(a, 'transfercredit', { username: `u${b}`, credit: fmt(m) });
        if (!r.ok) assert.match(r.text, /^insufficient credit/);
        bump(r.ok ? 'api transfer ok' : 'api transfer refused');
      };
    if (kind < 0.72)
      return async () => {
        try {
          const r = await s.money.chargePin(users[a]!.id, pin);
          putIn += r.amount;
          bump('pin ok');
        } catch (e) {
          if (!(e instanceof MoneyError) || e.message !== 'PIN already used') throw e;
          bump('pin used');
        }
      };
    if (kind < 0.78)
      return async () => {
        const r = await api(a, 'charge', { pin });
        if (r.ok) putIn += 1_250_000;
        else assert.equal(r.text, 'PIN already used');
        bump(r.ok ? 'api pin ok' : 'api pin used');
      };
    if (kind < 0.86)
      return async () => {
        const r = await local('addcredit', { bnum: `u${a}`, credit: fmt(m) });
        assert.ok(r.ok, r.text);
        putIn += m;
        bump('credit');
      };
    return async () => {
      // spending: a debit that must never take the balance below zero
      try {
        await s.money.addCredit(users[a]!.id, -m, 1, 'spend');
        spent += m;
        bump('spend ok');
      } catch (e) {
        if (!(e instanceof MoneyError) || e.kind !== 'insufficient') throw e;
        bump('spend refused');
      }
    };
  };
  const ops = Array.from({ length: OPS }, makeOp);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ops.length) await ops[next++]!();
    }),
  );

  const rows = await s.storage.db
    .selectFrom('tb_users')
    .select(['id', 'credit'])
    .where('parentid', '=', res.id)
    .execute();
  assert.equal(rows.length, ACCOUNTS);
  const total = rows.reduce((x, r) => x + Number(r.credit), 0);
  assert.equal(total, putIn - spent, 'money neither created nor lost');
  for (const r of rows) assert.ok(Number(r.credit) >= 0, `balance of ${r.id} is negative`);
  assert.deepEqual(await s.ledger.audit(), [], 'every balance equals the sum of its entries');
  for (const r of rows) assert.equal(await s.ledger.entriesSum(Number(r.id)), Number(r.credit));
  // each used PIN credited exactly once
  const used = await s.storage.db
    .selectFrom('tb_pins')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('used_at', 'is not', null)
    .executeTakeFirstOrThrow();
  const pinEntries = await s.storage.db
    .selectFrom('tb_ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('ref', 'like', 'pin:%')
    .executeTakeFirstOrThrow();
  assert.equal(Number(pinEntries.n), Number(used.n));
  assert.equal((counts['pin ok'] ?? 0) + (counts['api pin ok'] ?? 0), Number(used.n));
  // the run did exercise both outcomes
  assert.ok(
    (counts['transfer ok'] ?? 0) > 0 && (counts['pin used'] ?? 0) + (counts['api pin used'] ?? 0) > 0,
    JSON.stringify(counts),
  );
  return { counts };
}

const NO_LIMITS = { apilimitip: '0', apilimituser: '0', apilimitglobal: '0' };

test('money is conserved under concurrent random operations (SQLite)', async () => {
  const seed = Number(process.env.MONEY_SEED ?? Date.now() % 1_000_000);
  const t = await startTestServer(NO_LIMITS);
  try {
    const { counts } = await scenario(t, seed);
    console.log(`sqlite seed ${seed}: ${JSON.stringify(counts)}`);
  } finally {
    await t.stop();
  }
});

test('money is conserved under concurrent random operations (PostgreSQL, parallel transactions)', async (tt) => {
  const pg = await freshPgDatabase();
  if ('skip' in pg) {
    tt.skip(pg.skip);
    return;
  }
  const seed = Number(process.env.MONEY_SEED ?? Date.now() % 1_000_000);
  const t = await startTestServer({ ...NO_LIMITS, dburl: pg.url });
  try {
    assert.equal(t.srv.services.storage.dialect, 'pg');
    const { counts } = await scenario(t, seed);
    console.log(`postgresql seed ${seed}: ${JSON.stringify(counts)}`);
  } finally {
    await t.stop();
    await pg.drop();
  }
});
