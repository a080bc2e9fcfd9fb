/** The money commands through the whole API pipeline (gateway.handle): levels allowed and denied, answers, ledger. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { generatePins, hashPin } from '../../src/domain/billing/pins.js';
import { luhnValid } from '../../src/domain/billing/cardprocessor.js';
import { pinsCommand } from '../../src/cli/pins.js';
import { openStorage } from '../../src/storage/db.js';

let t: TestServer;
const LOCAL = src('127.0.0.1');
const REMOTE = src('203.0.113.7');
const PW: Record<string, string> = { admin: ADMIN_PASSWORD };
const ids: Record<string, number> = {};

const local = (e: string, p: Record<string, string>) => t.srv.gateway.handle(req(e, p, LOCAL));
/** A remote call authenticated as `user`. */
const as = (user: string, e: string, p: Record<string, string>, ip = '203.0.113.7') =>
  t.srv.gateway.handle(req(e, { authkey: API_KEY, authid: user, authpwd: PW[user]!, ...p }, src(ip)));
const bal = async (user: string) => (await t.srv.services.ledger.balance(ids[user]!))!.credit;
const db = () => t.srv.services.storage.db;

async function mkUser(name: string, extra: Record<string, string> = {}): Promise<void> {
  PW[name] = `${name}-pw-1`;
  const r = await local('newuseri', { u_username: name, u_password: PW[name]!, ...extra });
  assert.ok(r.ok, r.text);
  ids[name] = Number(r.fields!.id);
}

before(async () => {
  t = await startTestServer({ authfailban: '5' });
  ids.admin = (await t.srv.services.users.byUsername('admin'))!.id;
  await mkUser('rita', { u_type: 'reseller', u_credit: '100' });
  await mkUser('rick', { u_type: 'reseller', u_credit: '100' });
  await mkUser('alice', { u_parentid: String(ids.rita), u_credit: '20' });
  await mkUser('bob', { u_parentid: String(ids.rita), u_credit: '5' });
  await mkUser('eve', { u_parentid: String(ids.rita), u_credit: '5', u_currency: 'EUR' });
  await mkUser('dave', { u_parentid: String(ids.rick), u_credit: '1' });
  await mkUser('carol', { u_credit: '10' });
  assert.ok((await local('addcredit', { bnum: 'admin', credit: '50' })).ok);
});
after(() => t.stop());

test('transfercredit: end user to a sibling; answer, fields, two ledger entries with one ref', async () => {
  const r = await as('alice', 'transfercredit', { username: 'bob', credit: '5' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, 'transferred 5.00 USD to bob; your balance 15.00 USD');
  assert.equal(r.fields!.credit, '5.00');
  assert.equal(r.fields!.balance, '15.00');
  assert.equal(r.fields!.username, 'bob');
  assert.equal(await bal('alice'), 15_000_000);
  assert.equal(await bal('bob'), 10_000_000);
  const entries = await db()
    .selectFrom('tb_ledger')
    .selectAll()
    .where('ref', '=', String(r.fields!.ref))
    .orderBy('id')
    .execute();
  assert.equal(entries.length, 2);
  assert.deepEqual(
    entries.map((e) => [Number(e.userid), Number(e.amount), e.reason, Number(e.actor)]).sort(),
    [
      [ids.alice, -5_000_000, 'transfercredit', ids.alice],
      [ids.bob, 5_000_000, 'transfercredit', ids.alice],
    ].sort(),
  );
  // positional params (param1 username, param2 credit)
  const pos = await t.srv.gateway.handle(
    req('transfercredit', { authkey: API_KEY, authid: 'bob', authpwd: PW.bob! }, REMOTE, {
      positional: ['alice', '0.5'],
    }),
  );
  assert.equal(pos.text, 'transferred 0.50 USD to alice; your balance 9.50 USD');
});

test('transfercredit: who may pay whom', async () => {
  assert.equal((await as('alice', 'transfercredit', { username: 'rita', credit: '1' })).ok, true, 'own parent');
  const other = await as('alice', 'transfercredit', { username: 'dave', credit: '1' });
  assert.equal(other.ok, false);
  assert.equal(other.text, 'you may not send credit to dave');
  assert.equal(other.legacyStatus, 403);
  assert.equal((await as('alice', 'transfercredit', { username: 'carol', credit: '1' })).ok, false, 'not a sibling');
  assert.equal(
    (await as('rita', 'transfercredit', { username: 'alice', credit: '1' })).ok,
    true,
    'reseller to own subtree',
  );
  assert.equal(
    (await as('rita', 'transfercredit', { username: 'dave', credit: '1' })).ok,
    false,
    'reseller outside subtree',
  );
  assert.equal((await as('admin', 'transfercredit', { username: 'dave', credit: '1' })).ok, true, 'admin to anyone');
  const self = await as('alice', 'transfercredit', { username: 'alice', credit: '1' });
  assert.match(self.text, /cannot transfer credit to yourself/);
  const none = await as('alice', 'transfercredit', { username: 'nobody', credit: '1' });
  assert.equal(none.text, 'user nobody not found');
  assert.equal(none.legacyStatus, 404);
});

test('transfercredit: bad amounts, other currency and overdraft are refused and move nothing', async () => {
  const before = [await bal('alice'), await bal('bob'), await bal('eve')];
  const n = await db()
    .selectFrom('tb_ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  for (const [credit, re] of [
    ['-1', /above zero/],
    ['0', /zero/],
    ['0.000000', /zero/],
    ['abc', /not an amount/],
    ['1.1234567', /not an amount/],
    ['1e3', /not an amount/],
    ['', /needs|missing/],
  ] as const) {
    const r = await as('alice', 'transfercredit', { username: 'bob', credit });
    assert.equal(r.ok, false, credit);
    assert.match(r.text, re, credit);
  }
  const cur = await as('alice', 'transfercredit', { username: 'eve', credit: '1' });
  assert.equal(cur.ok, false);
  assert.match(cur.text, /different currencies: your account is in USD, eve's in EUR/);
  const over = await as('bob', 'transfercredit', { username: 'alice', credit: '1000' });
  assert.equal(over.ok, false);
  assert.match(over.text, /^insufficient credit: you have 9\.50 USD, the transfer needs 1000\.00/);
  assert.deepEqual([await bal('alice'), await bal('bob'), await bal('eve')], before);
  const n2 = await db()
    .selectFrom('tb_ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  assert.equal(Number(n2.n), Number(n.n));
});

test('transfercredit: anonymous remote callers are denied; a tb_api level of 8 denies end users, allows resellers', async () => {
  const anon = await t.srv.gateway.handle(
    req('transfercredit', { authkey: API_KEY, username: 'bob', credit: '1' }, REMOTE),
  );
  assert.equal(anon.ok, false);
  await db()
    .insertInto('tb_api')
    .values({ fname: 'transfercredit', req_key: null, req_ip: null, req_user: 8, req_user_mode: null, customsql: null })
    .execute();
  await t.srv.gateway.rules.load();
  try {
    const e = await as('alice', 'transfercredit', { username: 'bob', credit: '1' });
    assert.match(e.text, /not allowed for your user type/);
    assert.equal((await as('rita', 'transfercredit', { username: 'bob', credit: '1' })).ok, true);
  } finally {
    await db().deleteFrom('tb_api').where('fname', '=', 'transfercredit').execute();
    await t.srv.gateway.rules.load();
  }
});

test('charge: a PIN credits once; used, expired, other currency and wrong PINs are refused', async () => {
  const { pins } = await generatePins(db(), {
    count: 3,
    value: 2_500_000,
    currency: 'USD',
    name: 't',
    createdBy: ids.admin!,
  });
  const eur = await generatePins(db(), {
    count: 1,
    value: 1_000_000,
    currency: 'EUR',
    name: 't',
    createdBy: ids.admin!,
  });
  await db()
    .insertInto('tb_pins')
    .values({
      pin_hash: hashPin('55554444333322'),
      batchid: 0,
      value: 1_000_000,
      currency: 'USD',
      expires_at: Date.now() - 1000,
      used_at: null,
      used_by: null,
      created_at: Date.now(),
    })
    .execute();
  assert.equal(pins.length, 3);
  for (const p of pins) assert.match(p, /^[1-9]\d{13}$/);
  const stored = await db().selectFrom('tb_pins').select('pin_hash').where('pin_hash', '=', pins[0]!).execute();
  assert.equal(stored.length, 0, 'the clear PIN is not stored');

  const b0 = await bal('carol');
  const r = await as('carol', 'charge', { pin: pins[0]! });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, `charged 2.50 USD; your balance ${((b0 + 2_500_000) / 1e6).toFixed(2)} USD`);
  assert.equal(await bal('carol'), b0 + 2_500_000);
  const again = await as('carol', 'charge', { pin: pins[0]! });
  assert.deepEqual([again.ok, again.text, again.legacyStatus], [false, 'PIN already used', 420]);
  const exp = await as('carol', 'charge', { pin: '5555 4444 3333 22' });
  assert.deepEqual([exp.ok, exp.text], [false, 'PIN expired']);
  const cur = await as('carol', 'charge', { pin: eur.pins[0]! });
  assert.deepEqual([cur.ok, cur.text], [false, 'PIN is for EUR but the account is in USD']);
  assert.equal((await as('eve', 'charge', { pin: eur.pins[0]! })).ok, true, 'the EUR account may use it');
  const wrong = await as('carol', 'charge', { pin: '12345678901234' }, '203.0.113.8');
  assert.deepEqual([wrong.ok, wrong.text, wrong.legacyStatus], [false, 'invalid PIN', 420]);
  assert.equal(await bal('carol'), b0 + 2_500_000);
  const entry = await db()
    .selectFrom('tb_ledger')
    .selectAll()
    .where('userid', '=', ids.carol!)
    .where('reason', '=', 'charge')
    .execute();
  assert.equal(entry.length, 1);
  // level: anonymous remote denied; via trusted IP acting for the user allowed
  assert.equal((await t.srv.gateway.handle(req('charge', { authkey: API_KEY, pin: pins[1]! }, REMOTE))).ok, false);
  assert.equal((await local('charge', { authid: 'bob', pin: pins[1]! })).ok, true);
});

test('charge: PIN brute force bans the IP', async () => {
  const ip = '203.0.113.99';
  for (let i = 0; i < 5; i++) {
    const r = await as('bob', 'charge', { pin: String(10_000_000_000_000 + i) }, ip);
    assert.equal(r.text, 'invalid PIN');
  }
  assert.equal(t.srv.services.bans.isBanned(ip), true);
  const { pins } = await generatePins(db(), {
    count: 1,
    value: 1_000_000,
    currency: 'USD',
    name: 't',
    createdBy: ids.admin!,
  });
  const after = await as('bob', 'charge', { pin: pins[0]! }, ip);
  assert.equal(after.ok, false);
  assert.match(after.text, /banned/);
  const ban = await db().selectFrom('tb_bans').selectAll().where('ip', '=', ip).executeTakeFirst();
  assert.match(ban!.reason, /PIN/);
  await t.srv.services.bans.remove(ip);
  assert.equal((await as('bob', 'charge', { pin: pins[0]! }, ip)).ok, true);
});

test('charge: 20 concurrent charges of one PIN — exactly one succeeds', async () => {
  const { pins } = await generatePins(db(), {
    count: 1,
    value: 3_000_000,
    currency: 'USD',
    name: 't',
    createdBy: ids.admin!,
  });
  const users = ['alice', 'bob', 'carol', 'rita', 'rick'];
  const before = await Promise.all(users.map(bal));
  const rs = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      as(users[i % users.length]!, 'charge', { pin: pins[0]! }, `203.0.113.${120 + i}`),
    ),
  );
  assert.equal(rs.filter((r) => r.ok).length, 1);
  assert.ok(rs.filter((r) => !r.ok).every((r) => r.text === 'PIN already used'));
  const afterB = await Promise.all(users.map(bal));
  assert.equal(afterB.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0), 3_000_000);
});

test('addcredit: trusted admin adds and corrects credit; never below zero; PIN to a user; remote and end users denied', async () => {
  const b0 = await bal('dave');
  const r = await local('addcredit', { bnum: 'dave', credit: '3.25' });
  assert.equal(r.ok, true, r.text);
  assert.equal(r.text, `added 3.25 USD to dave; balance ${((b0 + 3_250_000) / 1e6).toFixed(2)} USD`);
  const e = await db()
    .selectFrom('tb_ledger')
    .selectAll()
    .where('ref', '=', String(r.fields!.ref))
    .executeTakeFirstOrThrow();
  assert.deepEqual([e.reason, Number(e.actor), Number(e.amount)], ['addcredit', ids.admin, 3_250_000]);
  // authid names the admin, username the account
  const named = await local('addcredit', { authid: 'admin', authpwd: ADMIN_PASSWORD, username: 'dave', credit: '-1' });
  assert.equal(named.text, `removed 1.00 USD from dave; balance ${((b0 + 2_250_000) / 1e6).toFixed(2)} USD`);
  const below = await local('addcredit', { bnum: 'dave', credit: '-1000' });
  assert.equal(below.ok, false);
  assert.match(below.text, /below zero/);
  assert.equal(await bal('dave'), b0 + 2_250_000);
  for (const bad of ['0', 'x', '1.0000001'])
    assert.equal((await local('addcredit', { bnum: 'dave', credit: bad })).ok, false, bad);
  assert.match((await local('addcredit', { bnum: 'nobody', credit: '1' })).text, /user nobody not found/);
  assert.match(
    (await local('addcredit', { bnum: 'dave', credit: '1', pin: '123456789012' })).text,
    /either credit or pin/,
  );
  const { pins } = await generatePins(db(), {
    count: 1,
    value: 4_000_000,
    currency: 'USD',
    name: 't',
    createdBy: ids.admin!,
  });
  const viaPin = await local('addcredit', { bnum: 'dave', pin: pins[0]! });
  assert.equal(viaPin.ok, true, viaPin.text);
  assert.equal(await bal('dave'), b0 + 6_250_000);
  const pinEntry = await db()
    .selectFrom('tb_ledger')
    .selectAll()
    .where('ref', '=', String(viaPin.fields!.ref))
    .executeTakeFirstOrThrow();
  assert.deepEqual([pinEntry.reason, Number(pinEntry.actor)], ['addcredit', ids.admin]);
  // remote admin: req_ip refuses
  const remote = await as('admin', 'addcredit', { username: 'dave', credit: '1' });
  assert.equal(remote.ok, false);
  assert.match(remote.text, /not allowed from 203\.0\.113\.7/);
  // an end user from a trusted address: level 6 refuses
  const user = await local('addcredit', { authid: 'bob', authpwd: PW.bob!, bnum: 'bob', credit: '100' });
  assert.match(user.text, /not allowed for your user type/);
  assert.equal(await bal('dave'), b0 + 6_250_000);
});

test('pingen: admin makes a batch (PINs answered once, usable); count capped; end users denied', async () => {
  const r = await local('pingen', { count: '4', credit: '1.5', currency: 'usd', expire: '30', name: 'promo' });
  assert.equal(r.ok, true, r.text);
  assert.match(r.text, /^4 PINs of 1\.50 USD generated \(batch \d+\)$/);
  assert.equal(r.rows!.length, 4);
  const pins = r.rows!.map((x) => String(x.pin));
  assert.equal(new Set(pins).size, 4);
  const batch = await db()
    .selectFrom('tb_pinbatches')
    .selectAll()
    .where('id', '=', Number(r.fields!.batchid))
    .executeTakeFirstOrThrow();
  assert.deepEqual(
    [batch.name, Number(batch.count), Number(batch.value), batch.currency],
    ['promo', 4, 1_500_000, 'USD'],
  );
  assert.ok(Number(batch.expires_at) > Date.now() + 29 * 86_400_000);
  assert.equal((await as('alice', 'charge', { pin: pins[2]! })).text.startsWith('charged 1.50 USD'), true);
  assert.match((await local('pingen', { count: '10001', credit: '1' })).text, /count: expected 1 to 10000/);
  assert.match((await local('pingen', { count: '2', credit: '-1' })).text, /credit/);
  assert.match((await local('pingen', { count: '2', credit: '1', currency: 'dollars' })).text, /currency/);
  assert.match((await as('alice', 'pingen', { count: '1', credit: '1' })).text, /not allowed for your user type/);
  assert.match((await as('rita', 'pingen', { count: '1', credit: '1' })).text, /not allowed for your user type/);
  assert.equal((await as('admin', 'pingen', { count: '1', credit: '1' })).ok, true);
});

async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  const orig = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((c: string | Uint8Array) => {
    text += String(c);
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = orig;
  }
  return text;
}

test('pins generate CLI: CSV to a file, hashes in the database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-pins-'));
  try {
    const out = join(dir, 'pins.csv');
    const errs = await stderrOf(() =>
      pinsCommand().parseAsync(
        [
          'generate',
          '--count',
          '1200',
          '--value',
          '2.5',
          '--currency',
          'EUR',
          '--expires-days',
          '7',
          '--name',
          'cli',
          '--out',
          out,
          '--data-dir',
          dir,
        ],
        { from: 'user' },
      ),
    );
    assert.match(errs, /generating PINs: 1200\/1200 \(100%\)/);
    assert.match(errs, /1200 PINs of 2\.50 EUR \(batch 1\) written to/);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'pin,value,currency,expires,batch');
    assert.equal(lines.length, 1201);
    const pins = lines.slice(1).map((l) => l.split(','));
    assert.equal(new Set(pins.map((p) => p[0])).size, 1200);
    assert.ok(pins.every((p) => /^\d{14}$/.test(p[0]!) && p[1] === '2.50' && p[2] === 'EUR'));
    const s = await openStorage('', dir);
    try {
      const n = await s.db
        .selectFrom('tb_pins')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(n.n), 1200);
      const hit = await s.db
        .selectFrom('tb_pins')
        .selectAll()
        .where('pin_hash', '=', hashPin(pins[17]![0]!))
        .executeTakeFirst();
      assert.equal(Number(hit?.value), 2_500_000);
    } finally {
      await s.close();
    }
    // a bad value is refused without touching the database
    const prev = process.exitCode;
    const bad = await stderrOf(() =>
      pinsCommand().parseAsync(['generate', '--count', '5', '--value', 'x', '--currency', 'EUR', '--data-dir', dir], {
        from: 'user',
      }),
    );
    assert.equal(process.exitCode, 1);
    process.exitCode = prev;
    assert.match(bad, /--value: expected an amount above zero/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- card payments against a local processor ----

interface Seen {
  auth?: string;
  body: any;
}

function processor(): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((q: IncomingMessage, s) => {
    let raw = '';
    q.on('data', (d) => (raw += d));
    q.on('end', () => {
      const body = JSON.parse(raw);
      seen.push({ auth: q.headers.authorization, body });
      const send = (code: number, o: unknown) => {
        s.writeHead(code, { 'content-type': 'application/json' });
        s.end(JSON.stringify(o));
      };
      switch (body.amount) {
        case '1.00':
          return send(200, { approved: true, transaction_id: `tx-${seen.length}` });
        case '2.00':
          return send(200, { approved: false, reason: `insufficient funds on ${body.card.number}` });
        case '3.00':
          return send(500, { error: 'boom' });
        case '4.00':
          return; // never answers
        case '5.00':
          return send(200, { approved: true, transaction_id: 'tx-same' });
        default:
          return send(400, { error: 'unexpected' });
      }
    });
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/charge`, seen }),
    ),
  );
}

const CARD = '4111111111111111';
const nextYear = String(new Date().getUTCFullYear() + 1);

test('cccharge: without a card processor a clear error', async () => {
  const r = await as('alice', 'cccharge', {
    cardnum: CARD,
    expireyear: nextYear,
    expmonth: '12',
    ccv2: '123',
    ammount: '1',
  });
  assert.equal(r.ok, false);
  assert.equal(r.text, 'cccharge needs a card processor: set cardprocessorurl (and cardprocessorkey)');
});

test('cccharge: approved credits once per transaction; declined, HTTP 500, timeout and bad card data credit nothing; card data never echoed', async () => {
  const p = await processor();
  const cfg = t.srv.services.config;
  cfg.persist({ cardprocessorurl: p.url, cardprocessorkey: 'proc-secret' });
  t.srv.services.money.cardTimeoutMs = 400;
  try {
    const card = (ammount: string, extra: Record<string, string> = {}) =>
      as('alice', 'cccharge', { cardnum: CARD, expireyear: nextYear, expmonth: '1', ccv2: '123', ammount, ...extra });
    const b0 = await bal('alice');
    const okR = await card('1');
    assert.equal(okR.ok, true, okR.text);
    assert.equal(okR.text, `charged 1.00 USD to the card; your balance ${((b0 + 1e6) / 1e6).toFixed(2)} USD`);
    assert.equal(p.seen[0]!.auth, 'Bearer proc-secret');
    assert.deepEqual(p.seen[0]!.body.card, { number: CARD, exp_year: Number(nextYear), exp_month: 1, cvv: '123' });
    assert.equal(p.seen[0]!.body.currency, 'USD');
    assert.equal(p.seen[0]!.body.amount_micros, 1_000_000);
    const entry = await db().selectFrom('tb_ledger').selectAll().where('ref', '=', 'cc:tx-1').execute();
    assert.deepEqual(
      entry.map((e) => [e.reason, Number(e.amount)]),
      [['cccharge', 1_000_000]],
    );

    const declined = await card('2');
    assert.equal(declined.ok, false);
    assert.match(declined.text, /^card declined: insufficient funds on/);
    for (const [amt, re] of [
      ['3', /HTTP 500; nothing was credited/],
      ['4', /did not answer within 0\.4 s; nothing was credited/],
    ] as const) {
      const r = await card(amt);
      assert.equal(r.ok, false);
      assert.match(r.text, re);
    }
    // same transaction id twice: credited once
    assert.equal((await card('5')).ok, true);
    const dup = await card('5');
    assert.equal(dup.ok, false);
    assert.match(dup.text, /already credited/);
    assert.equal(await bal('alice'), b0 + 6_000_000);
    const calls = p.seen.length;
    // validation before the processor is asked
    for (const [extra, re] of [
      [{ cardnum: '4111111111111112' }, /Luhn/],
      [{ cardnum: '4111-1111-abcd' }, /cardnum/],
      [{ expireyear: '2020' }, /expired/],
      [{ expmonth: '13' }, /expmonth/],
      [{ ccv2: '12' }, /ccv2/],
      [{ ccv2: '12345' }, /ccv2/],
      [{ ammount: '0' }, /ammount/],
      [{ ammount: '-5' }, /ammount/],
    ] as const) {
      const r = await card('1', extra as Record<string, string>);
      assert.equal(r.ok, false, JSON.stringify(extra));
      assert.match(r.text, re);
    }
    assert.equal(p.seen.length, calls, 'the processor was not called for invalid input');
    for (const r of [declined, dup]) {
      assert.equal(r.text.includes(CARD), false);
      assert.equal(r.text.includes('123'), false);
    }
    assert.equal(luhnValid(CARD), true);
    // level: anonymous remote denied
    assert.equal(
      (
        await t.srv.gateway.handle(
          req(
            'cccharge',
            { authkey: API_KEY, cardnum: CARD, expireyear: nextYear, expmonth: '1', ccv2: '123', ammount: '1' },
            REMOTE,
          ),
        )
      ).ok,
      false,
    );
    // nothing in the database holds the card number
    const all = JSON.stringify(await db().selectFrom('tb_ledger').selectAll().execute());
    assert.equal(all.includes(CARD), false);
  } finally {
    cfg.persist({ cardprocessorurl: '', cardprocessorkey: '' });
    p.server.closeAllConnections();
    p.server.close();
  }
});

test('ledger: every balance equals the sum of its entries after all of the above', async () => {
  assert.deepEqual(await t.srv.services.ledger.audit(), []);
});
