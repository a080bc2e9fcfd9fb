/**
 * The daily report (`dailyreport`, and dailymaint for the day before): the calls of one UTC day from tb_cdrs —
 * attempts, answered, minutes, revenue per currency, ASR/ACD, top destinations, failures by cause — and the
 * accounts under `lowcredit`, as text and HTML, written to `<datadir>/reports/daily-YYYY-MM-DD.{txt,html}`.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { DomainError } from '../../domain/errors.js';

const UNIT = 1_000_000;
const DAY = 86_400_000;

export interface DailyReport {
  day: string;
  calls: number;
  answered: number;
  minutes: number;
  /** answer-seizure ratio, percent */
  asr: number;
  /** average answered call duration, seconds */
  acd: number;
  revenue: Array<{ currency: string; amount: number }>;
  destinations: Array<{ prefix: string; calls: number; minutes: number }>;
  failures: Array<{ cause: string; calls: number }>;
  lowCredit: Array<{ username: string; credit: number; currency: string }>;
}

/** `YYYY-MM-DD` → its start (UTC, epoch ms); an empty day means yesterday. */
export function dayRange(day: string, now = Date.now()): { day: string; from: number; to: number } {
  if (!day) {
    const y = new Date(now - DAY).toISOString().slice(0, 10);
    return dayRange(y);
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))
    throw new DomainError(`day "${day}": expected YYYY-MM-DD`);
  const from = Date.parse(`${day}T00:00:00Z`);
  return { day, from, to: from + DAY };
}

export async function buildDailyReport(
  db: Kysely<Database>,
  dayText: string,
  lowCredit: number,
  now = Date.now(),
): Promise<DailyReport> {
  const { day, from, to } = dayRange(dayText, now);
  const inDay = db.selectFrom('tb_cdrs').where('end_at', '>=', from).where('end_at', '<', to);
  const tot = await inDay
    .select((eb) => [
      eb.fn.countAll<number>().as('calls'),
      eb.fn.sum<number>(eb.case().when('duration', '>', 0).then(1).else(0).end()).as('answered'),
      eb.fn.sum<number>('duration').as('seconds'),
    ])
    .executeTakeFirstOrThrow();
  const calls = Number(tot.calls);
  const answered = Number(tot.answered ?? 0);
  const seconds = Number(tot.seconds ?? 0);
  const revenue = await inDay
    .select((eb) => ['currency', eb.fn.sum<number>('cost').as('amount')])
    .groupBy('currency')
    .orderBy('currency')
    .execute();
  const prefix = sql<string>`substr(callee, 1, 4)`;
  const destinations = await inDay
    .select((eb) => [prefix.as('prefix'), eb.fn.countAll<number>().as('calls'), eb.fn.sum<number>('duration').as('s')])
    .groupBy(prefix)
    .orderBy(sql`count(*)`, 'desc')
    .limit(10)
    .execute();
  const failures = await inDay
    .where('duration', '=', 0)
    .select((eb) => ['reason', eb.fn.countAll<number>().as('calls')])
    .groupBy('reason')
    .orderBy(sql`count(*)`, 'desc')
    .limit(20)
    .execute();
  const low = await lowCreditAccounts(db, lowCredit);
  return {
    day,
    calls,
    answered,
    minutes: Math.round((seconds / 60) * 100) / 100,
    asr: calls ? Math.round((answered / calls) * 1000) / 10 : 0,
    acd: answered ? Math.round(seconds / answered) : 0,
    revenue: revenue.map((r) => ({ currency: r.currency, amount: Number(r.amount ?? 0) / UNIT })),
    destinations: destinations.map((d) => ({
      prefix: d.prefix,
      calls: Number(d.calls),
      minutes: Math.round((Number(d.s ?? 0) / 60) * 100) / 100,
    })),
    failures: failures.map((f) => ({ cause: f.reason, calls: Number(f.calls) })),
    lowCredit: low,
  };
}

/** Enabled accounts with less credit than `lowCredit` (in their currency), lowest first (at most 100). */
export async function lowCreditAccounts(db: Kysely<Database>, lowCredit: number): Promise<DailyReport['lowCredit']> {
  const rows = await db
    .selectFrom('tb_users')
    .select(['username', 'credit', 'currency'])
    .where('enabled', '=', 1)
    .where('credit', '<', Math.round(lowCredit * UNIT))
    .orderBy('credit')
    .limit(100)
    .execute();
  return rows.map((u) => ({ username: u.username, credit: Number(u.credit) / UNIT, currency: u.currency }));
}

export function reportText(r: DailyReport): string {
  const lines = [
    `voxswitch daily report ${r.day} (UTC)`,
    `calls: ${r.calls}  answered: ${r.answered}  minutes: ${r.minutes}  ASR: ${r.asr}%  ACD: ${r.acd} s`,
    `revenue: ${r.revenue.map((x) => `${x.amount.toFixed(4)} ${x.currency}`).join(', ') || '0'}`,
    'top destinations (prefix: calls, minutes):',
    ...r.destinations.map((d) => `  ${d.prefix}: ${d.calls}, ${d.minutes}`),
    'failures by cause:',
    ...r.failures.map((f) => `  ${f.cause}: ${f.calls}`),
    `low-credit accounts: ${r.lowCredit.length}`,
    ...r.lowCredit.map((u) => `  ${u.username}: ${u.credit.toFixed(4)} ${u.currency}`),
  ];
  return lines.join('\n') + '\n';
}

const esc = (s: string | number) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function table(head: string[], rows: Array<Array<string | number>>): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table border="1" cellpadding="4">\n<tr>${th}</tr>\n${tr}\n</table>`;
}

export function reportHtml(r: DailyReport): string {
  return [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>voxswitch daily report ${esc(r.day)}</title></head><body>`,
    `<h1>voxswitch daily report ${esc(r.day)} (UTC)</h1>`,
    table(['calls', 'answered', 'minutes', 'ASR %', 'ACD s'], [[r.calls, r.answered, r.minutes, r.asr, r.acd]]),
    '<h2>Revenue</h2>',
    table(
      ['currency', 'amount'],
      r.revenue.map((x) => [x.currency, x.amount.toFixed(4)]),
    ),
    '<h2>Top destinations</h2>',
    table(
      ['prefix', 'calls', 'minutes'],
      r.destinations.map((d) => [d.prefix, d.calls, d.minutes]),
    ),
    '<h2>Failures by cause</h2>',
    table(
      ['cause', 'calls'],
      r.failures.map((f) => [f.cause, f.calls]),
    ),
    '<h2>Low-credit accounts</h2>',
    table(
      ['account', 'credit', 'currency'],
      r.lowCredit.map((u) => [u.username, u.credit.toFixed(4), u.currency]),
    ),
    '</body></html>',
    '',
  ].join('\n');
}

/** Writes the report's text and HTML files (each written whole, then renamed); answers their paths. */
export function saveReport(dataDir: string, r: DailyReport): { text: string; html: string } {
  const dir = join(dataDir, 'reports');
  mkdirSync(dir, { recursive: true });
  const out = { text: join(dir, `daily-${r.day}.txt`), html: join(dir, `daily-${r.day}.html`) };
  for (const [file, body] of [
    [out.text, reportText(r)],
    [out.html, reportHtml(r)],
  ] as const) {
    writeFileSync(`${file}.part`, body);
    renameSync(`${file}.part`, file);
  }
  return out;
}
