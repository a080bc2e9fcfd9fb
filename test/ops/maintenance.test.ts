/**
 * Maintenance jobs on SQLite: hourlymaint frees expired number locks and bans; dailymaint failing half way (a
 * failure injected inside the CDR step's transaction) deletes nothing of that step, records the error, and the next
 * run completes it; a job held by another process answers "already running on <node>"; the daily report (text and
 * HTML, escaped) from the CDRs; the schedule.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { Maintenance, schedule } from '../../src/ops/maintenance/scheduler.js';
import { JobLock } from '../../src/ops/maintenance/lock.js';
import type { Services } from '../../src/services.js';

const DAY = 86_400_000;
const LOCAL = src('127.0.0.1');
let t: TestServer;
const api = (e: string, p: Record<string, string> = {}) => t.srv.gateway.handle(req(e, p, LOCAL));

async function addCdr(s: Services, i: number, endAt: number, duration: number, reason: string, callee = '4930111') {
  await s.storage.db
    .insertInto('tb_cdrs')
    .values({
      callid: `m-${i}`,
      caller: 'alice',
      callee,
      userid: 1,
      route: 'gw1',
      start_at: endAt - duration * 1000 - 1000,
      connect_at: duration ? endAt - duration * 1000 : null,
      end_at: endAt,
      duration,
      billed: duration,
      cost: duration * 1000,
      currency: 'USD',
      reason,
      leg: '',
      created_at: endAt,
    })
    .execute();
}

const count = async (s: Services) =>
  Number(
    (
      await s.storage.db
        .selectFrom('tb_cdrs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

before(async () => {
  t = await startTestServer({ cdrretentiondays: '30', usemaint: 'false', nodeid: 'maint-a' });
  const s = t.srv.services;
  const now = Date.now();
  for (let i = 0; i < 12; i++) await addCdr(s, i, now - 40 * DAY - i * 1000, 60, 'normal');
  await addCdr(s, 100, now - 3_600_000, 120, 'normal');
  await addCdr(s, 101, now - 3_500_000, 0, '<script>busy</script>');
  await addCdr(s, 102, now - 3_400_000, 0, 'unanswered', '4420000');
  await s.storage.db
    .insertInto('tb_numbers')
    .values([
      { number: '15550001', userid: 1, status: 'locked', locked_until: now - 1000, created_at: now },
      { number: '15550002', userid: 1, status: 'locked', locked_until: now + 600_000, created_at: now },
    ])
    .execute();
  await s.storage.db
    .insertInto('tb_bans')
    .values({ ip: '198.51.100.9', reason: 'test', until: now - 1000, created_at: now - 5000 })
    .execute();
});

after(async () => {
  await t?.stop();
});

test('hourlymaint through the API: expired number locks freed, expired bans deleted, a run recorded', async () => {
  const r = await api('hourlymaint');
  assert.ok(r.ok, r.text);
  assert.match(r.text, /numberlocks: freed=1; bans: expired=1/);
  const s = t.srv.services;
  const nums = await s.storage.db.selectFrom('tb_numbers').select(['number', 'status']).orderBy('number').execute();
  assert.deepEqual(nums, [
    { number: '15550001', status: 'free' },
    { number: '15550002', status: 'locked' },
  ]);
  const runs = await s.ops.maintenance.history();
  assert.equal(runs[0]!.job, 'hourlymaint');
  assert.equal(runs[0]!.node, 'maint-a');
  assert.equal(runs[0]!.error, '');
  assert.ok(Number(runs[0]!.ended_at) >= Number(runs[0]!.started_at));
  const locks = await api('locks');
  assert.match(locks.text, /1 number locks, 0 credit reservations, 0 jobs running/);
});

test(
  'dailymaint failing half way: the CDR step rolled back whole, the error recorded, the next run completes',
  { timeout: 20_000 },
  async () => {
    const s = t.srv.services;
    let fail = true;
    const m = new Maintenance({
      storage: s.storage,
      ledger: s.ledger,
      dataDir: t.dataDir,
      log: s.log,
      node: 'maint-test',
      options: () => s.config.options,
      checkpoint: (_job, label) => {
        if (fail && label === 'cdrs') throw new Error('injected failure');
      },
    });
    assert.equal(await count(s), 15);
    await assert.rejects(
      m.run('dailymaint'),
      /dailymaint failed: step cdrs failed: injected failure.*done before it: pins/,
    );
    assert.equal(await count(s), 15, 'nothing half-deleted');
    const failed = (await m.history())[0]!;
    assert.match(failed.error, /step cdrs failed: injected failure/);
    assert.ok(JSON.parse(failed.result).pins, 'the step before it is recorded as done');
    // the lease was given back: the job runs again at once and finishes
    fail = false;
    const r = await m.run('dailymaint');
    assert.equal(r.steps.cdrs!.deleted, 12);
    assert.equal(r.steps.reconcile!.mismatches, 0);
    assert.equal(await count(s), 3);
    assert.ok(existsSync(String(r.steps.report!.file)));
  },
);

test('a job held by another process answers "already running on <node>"', { timeout: 20_000 }, async () => {
  const s = t.srv.services;
  // another process's lease on the same database (the SQLite connection is not held meanwhile)
  const other = new JobLock(s.storage.db, 'node-b');
  assert.deepEqual(await other.claim('hourlymaint', 60_000), { ok: true });
  const r = await api('hourlymaint');
  assert.equal(r.ok, false);
  assert.match(r.text, /hourlymaint is already running on node-b \(since /);
  const l = await api('locks');
  assert.match(l.text, /1 jobs running/);
  await other.release('hourlymaint');
  assert.ok((await api('hourlymaint')).ok, 'free again once the other finished');
  // a lease whose holder died runs out: it is taken over
  assert.deepEqual(await other.claim('hourlymaint', -1), { ok: true });
  assert.ok((await api('hourlymaint')).ok, 'an expired lease is taken over');
});

test('dailyreport: calls, minutes, ASR/ACD, destinations, failures, low credit; text and escaped HTML', async () => {
  const day = new Date(Date.now() - 3_600_000).toISOString().slice(0, 10);
  // the three recent CDRs end within the last hour; near midnight they may fall on two days
  const r = await api('dailyreport', { date: day });
  assert.ok(r.ok, r.text);
  assert.match(r.text, new RegExp(`daily report ${day}`));
  const calls = Number(r.fields!.calls);
  assert.ok(calls >= 1 && calls <= 3);
  assert.match(r.text, /low-credit accounts: \d+/);
  const html = readFileSync(join(t.dataDir, 'reports', `daily-${day}.html`), 'utf8');
  assert.ok(!html.includes('<script>'), 'causes are escaped');
  if (calls === 3) {
    assert.match(r.text, /calls: 3 {2}answered: 1 {2}minutes: 2 {2}ASR: 33\.3% {2}ACD: 120 s/);
    assert.match(r.text, /&lt;script&gt;|<script>busy<\/script>: 1/);
    assert.match(html, /&lt;script&gt;busy&lt;\/script&gt;/);
  }
  const bad = await api('dailyreport', { date: '2026-13-45' });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /expected YYYY-MM-DD/);
});

test('checkcredits, checkpins, finetune, maintreset, syncmedia', async () => {
  const c = await api('checkcredits');
  assert.ok(c.ok, c.text);
  assert.match(c.text, /^0 balances differ from their ledger; \d+ accounts under 1/);
  const p = await api('checkpins');
  assert.ok(p.ok, p.text);
  assert.match(p.text, /0 used PINs, 0 of them without their ledger entry/);
  const f = await api('finetune');
  assert.ok(f.ok, f.text);
  assert.match(f.text, /sqlite_cache: \d+ KiB/);
  const m = await api('maintreset');
  assert.match(m.text, /usemaint is off/);
  const sm = await api('syncmedia');
  assert.equal(sm.ok, false);
  assert.match(sm.text, /keeps no media files/);
});

test('schedule: hourly at :05, daily 00:10, weekly Monday 01:10, monthly the 1st 02:10 (UTC)', () => {
  const at = Date.parse('2026-12-02T06:50:00Z'); // a Wednesday
  const iso = (n: number) => new Date(n).toISOString();
  assert.equal(iso(schedule('hourlymaint', at).next), '2026-12-02T07:05:00.000Z');
  assert.equal(iso(schedule('hourlymaint', at).period), '2026-12-02T06:05:00.000Z');
  assert.equal(iso(schedule('dailymaint', at).next), '2026-12-03T00:10:00.000Z');
  assert.equal(iso(schedule('weeklymaint', at).next), '2026-12-07T01:10:00.000Z');
  assert.equal(iso(schedule('weeklymaint', at).period), '2026-11-30T01:10:00.000Z');
  assert.equal(iso(schedule('monthlymaint', at).next), '2027-01-01T02:10:00.000Z');
  const early = Date.parse('2026-12-01T01:00:00Z');
  assert.equal(iso(schedule('monthlymaint', early).next), '2026-12-01T02:10:00.000Z');
  assert.equal(iso(schedule('monthlymaint', early).period), '2026-11-01T02:10:00.000Z');
});
