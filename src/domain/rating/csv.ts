/**
 * Tariff CSV import and export.
 *
 * Format: a header row naming at least prefix,destination,price,connectfee,minduration,increment,currency (any
 * order, case-insensitive, extra columns ignored; optional valid_from,valid_to as ISO dates or epoch ms).
 * price is per minute and connectfee per call, as decimals (up to 6 decimals) in the row's currency.
 * increment may be written "A/B" (e.g. 30/6): that is minduration=A, increment=B (the minduration column must
 * then be empty or equal A). Fields may be quoted ("…", "" for a quote, commas and newlines inside).
 *
 * The import is all-or-nothing: every row is checked first; if any is bad nothing is written and the errors
 * name the line and the reason. Otherwise one transaction writes the rows: with `replace` the plan's rows are
 * all replaced, without it rows of the file replace the plan's rows for the same prefixes and the others stay.
 * The plan is created when missing (the plan named "default" applies to every user without a plan).
 * A running server sees the new rates after RatingService.load() (the `reload` API or SIGHUP).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { parseAmount, formatAmount } from '../billing/amount.js';
import { DomainError } from '../errors.js';
import { DEFAULT_PLAN } from './service.js';

export interface CsvRecord {
  /** 1-based line where the record starts */
  line: number;
  fields: string[];
}

/** RFC 4180 CSV: quoted fields with "" escapes, commas and line breaks inside quotes, CRLF or LF, BOM. */
export function* parseCsv(text: string): Generator<CsvRecord> {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let endOfRecord = false;
    while (!endOfRecord) {
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= n) throw new CsvSyntaxError(start, 'unterminated quoted field');
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        // after a closing quote: a separator, a line end or the end
        while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
        if (i < n && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n')
          throw new CsvSyntaxError(line, 'text after a closing quote');
      } else {
        let j = i;
        while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r') j++;
        field += text.slice(i, j);
        i = j;
      }
      if (i >= n) {
        endOfRecord = true;
      } else if (text[i] === ',') {
        i++;
        fields.push(field);
        field = '';
        continue;
      } else {
        if (text[i] === '\r') i++;
        if (text[i] === '\n') i++;
        line++;
        endOfRecord = true;
      }
    }
    fields.push(field);
    if (fields.length === 1 && fields[0]!.trim() === '') continue; // blank line
    yield { line: start, fields };
  }
}

export class CsvSyntaxError extends DomainError {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

export interface ImportOptions {
  plan?: string;
  replace?: boolean;
  /** Called now and then with (rows done, rows in all) while checking and writing. */
  onProgress?: (done: number, total: number, phase: 'check' | 'write') => void;
}

export interface ImportError {
  line: number;
  reason: string;
}

export interface ImportResult {
  imported: number;
  errors: ImportError[];
  plan: string;
  planId?: number;
  /** rows removed from the plan (replace, or same prefixes) */
  replaced: number;
}

interface Row {
  line: number;
  prefix: string;
  destination: string;
  price: number;
  connectfee: number;
  minduration: number;
  increment: number;
  currency: string;
  valid_from: number | null;
  valid_to: number | null;
}

const REQUIRED = ['prefix', 'destination', 'price', 'connectfee', 'minduration', 'increment', 'currency'] as const;
const MAX_ERRORS = 100;
const CHUNK = 500;

function parseTime(s: string): number | null | undefined {
  const t = s.trim();
  if (t === '') return null;
  if (/^\d{10,15}$/.test(t)) return Number(t);
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) return undefined;
  const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
  return Number.isFinite(ms) ? ms : undefined;
}

function parseInt0(s: string): number | undefined {
  const t = s.trim();
  if (t === '') return undefined;
  return /^\d{1,7}$/.test(t) ? Number(t) : NaN;
}

function checkRow(rec: CsvRecord, col: Record<string, number>, planCurrency: string): Row | ImportError {
  const get = (name: string) => (col[name] === undefined ? '' : (rec.fields[col[name]!] ?? '').trim());
  const bad = (reason: string): ImportError => ({ line: rec.line, reason });
  let prefix = get('prefix');
  if (prefix.startsWith('+')) prefix = prefix.slice(1);
  if (!/^\d{1,32}$/.test(prefix)) return bad(`prefix: expected 1-32 digits, got "${get('prefix')}"`);
  const destination = get('destination');
  if (destination.length > 128 || /[\x00-\x1f]/.test(destination))
    return bad('destination: at most 128 printable characters');
  const price = parseAmount(get('price'));
  if (price === undefined || price < 0)
    return bad(`price: expected a non-negative decimal per minute (up to 6 decimals), got "${get('price')}"`);
  const cfText = get('connectfee');
  const connectfee = cfText === '' ? 0 : parseAmount(cfText);
  if (connectfee === undefined || connectfee < 0)
    return bad(`connectfee: expected a non-negative decimal (up to 6 decimals), got "${cfText}"`);
  let minduration = parseInt0(get('minduration'));
  if (Number.isNaN(minduration)) return bad(`minduration: expected whole seconds, got "${get('minduration')}"`);
  const incText = get('increment');
  let increment: number | undefined;
  const ab = /^(\d{1,7})\s*\/\s*(\d{1,7})$/.exec(incText);
  if (ab) {
    const a = Number(ab[1]);
    if (minduration !== undefined && minduration !== a)
      return bad(`increment "${incText}" says minduration ${a} but the minduration column says ${minduration}`);
    minduration = a;
    increment = Number(ab[2]);
  } else {
    increment = parseInt0(incText);
    if (Number.isNaN(increment)) return bad(`increment: expected whole seconds or A/B (e.g. 30/6), got "${incText}"`);
  }
  increment ??= 1;
  if (increment < 1) return bad('increment: must be at least 1 second');
  const currency = (get('currency') || planCurrency).toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency))
    return bad(`currency: expected a 3-letter code such as USD, got "${get('currency')}"`);
  const vf = parseTime(get('valid_from'));
  const vt = parseTime(get('valid_to'));
  if (vf === undefined) return bad(`valid_from: expected an ISO date/time or epoch ms, got "${get('valid_from')}"`);
  if (vt === undefined) return bad(`valid_to: expected an ISO date/time or epoch ms, got "${get('valid_to')}"`);
  if (vf !== null && vt !== null && vt <= vf) return bad('valid_to must be after valid_from');
  return {
    line: rec.line,
    prefix,
    destination,
    price,
    connectfee,
    minduration: minduration ?? 0,
    increment,
    currency,
    valid_from: vf,
    valid_to: vt,
  };
}

const overlaps = (a: Row, b: Row) =>
  (a.valid_from ?? -Infinity) < (b.valid_to ?? Infinity) && (b.valid_from ?? -Infinity) < (a.valid_to ?? Infinity);

/** Checks the whole file, then writes it in one transaction (nothing when any row is bad). */
export async function importTariffsCsv(
  db: Kysely<Database>,
  text: string,
  o: ImportOptions = {},
): Promise<ImportResult> {
  const planName = (o.plan ?? DEFAULT_PLAN).trim();
  const errors: ImportError[] = [];
  const result = (imported: number, replaced = 0, planId?: number): ImportResult => ({
    imported,
    errors,
    plan: planName,
    planId,
    replaced,
  });
  if (!planName || planName.length > 128) {
    errors.push({ line: 0, reason: 'plan: 1-128 characters' });
    return result(0);
  }
  const existing = await db.selectFrom('tb_tariffplans').selectAll().where('name', '=', planName).executeTakeFirst();
  const planCurrency = existing?.currency ?? '';

  let records: CsvRecord[];
  try {
    records = [...parseCsv(text)];
  } catch (e) {
    errors.push(
      e instanceof CsvSyntaxError
        ? { line: e.line, reason: e.message.replace(/^line \d+: /, '') }
        : { line: 0, reason: (e as Error).message },
    );
    return result(0);
  }
  const header = records.shift();
  if (!header) {
    errors.push({ line: 1, reason: 'empty file: expected a header row' });
    return result(0);
  }
  const col: Record<string, number> = {};
  header.fields.forEach((h, i) => {
    const k = h.trim().toLowerCase();
    if (k && col[k] === undefined) col[k] = i;
  });
  const missing = REQUIRED.filter((c) => col[c] === undefined);
  if (missing.length) {
    errors.push({
      line: header.line,
      reason: `header: missing column(s) ${missing.join(', ')} (have: ${header.fields.join(', ')})`,
    });
    return result(0);
  }

  const rows: Row[] = [];
  const byPrefix = new Map<string, Row[]>();
  const total = records.length;
  const every = Math.max(1000, Math.floor(total / 20));
  for (let k = 0; k < records.length; k++) {
    const r = checkRow(records[k]!, col, planCurrency || 'USD');
    if ('reason' in r) {
      if (errors.length < MAX_ERRORS) errors.push(r);
      continue;
    }
    const same = byPrefix.get(r.prefix);
    if (same) {
      const clash = same.find((x) => overlaps(x, r));
      if (clash) {
        if (errors.length < MAX_ERRORS)
          errors.push({
            line: r.line,
            reason: `prefix ${r.prefix}: already on line ${clash.line} for an overlapping validity period`,
          });
        continue;
      }
      same.push(r);
    } else byPrefix.set(r.prefix, [r]);
    rows.push(r);
    if (o.onProgress && (k + 1) % every === 0) o.onProgress(k + 1, total, 'check');
  }
  if (errors.length) return result(0);
  if (rows.length === 0) {
    errors.push({ line: header.line, reason: 'no tariff rows after the header' });
    return result(0);
  }

  let replaced = 0;
  let planId = 0;
  await db.transaction().execute(async (trx) => {
    if (existing) planId = Number(existing.id);
    else {
      const p = await trx
        .insertInto('tb_tariffplans')
        .values({ name: planName, currency: rows[0]!.currency, created_at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      planId = Number(p.id);
    }
    if (o.replace) {
      const d = await trx.deleteFrom('tb_tariffs').where('planid', '=', planId).executeTakeFirst();
      replaced = Number(d.numDeletedRows);
    } else if (existing) {
      const prefixes = [...byPrefix.keys()];
      for (let i = 0; i < prefixes.length; i += CHUNK) {
        const d = await trx
          .deleteFrom('tb_tariffs')
          .where('planid', '=', planId)
          .where('prefix', 'in', prefixes.slice(i, i + CHUNK))
          .executeTakeFirst();
        replaced += Number(d.numDeletedRows);
      }
    }
    for (let i = 0; i < rows.length; i += CHUNK) {
      await trx
        .insertInto('tb_tariffs')
        .values(
          rows.slice(i, i + CHUNK).map((r) => ({
            planid: planId,
            prefix: r.prefix,
            destination: r.destination,
            price: r.price,
            connectfee: r.connectfee,
            minduration: r.minduration,
            increment: r.increment,
            currency: r.currency,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
          })),
        )
        .execute();
      o.onProgress?.(Math.min(i + CHUNK, rows.length), rows.length, 'write');
    }
  });
  return result(rows.length, replaced, planId);
}

function csvField(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const iso = (ms: number | null) => (ms === null ? '' : new Date(Number(ms)).toISOString());

/**
 * The plan's rates as CSV (the import format, with valid_from/valid_to), sorted by prefix. Undefined if no such plan.
 */
export async function exportTariffsCsv(db: Kysely<Database>, plan = DEFAULT_PLAN): Promise<string | undefined> {
  const p = await db.selectFrom('tb_tariffplans').select(['id']).where('name', '=', plan).executeTakeFirst();
  if (!p) return undefined;
  const rows = await db
    .selectFrom('tb_tariffs')
    .selectAll()
    .where('planid', '=', Number(p.id))
    .orderBy('prefix')
    .orderBy('valid_from')
    .execute();
  const out = ['prefix,destination,price,connectfee,minduration,increment,currency,valid_from,valid_to'];
  for (const r of rows) {
    out.push(
      [
        r.prefix,
        csvField(r.destination),
        formatAmount(Number(r.price)),
        formatAmount(Number(r.connectfee)),
        String(r.minduration),
        String(r.increment),
        r.currency,
        iso(r.valid_from === null ? null : Number(r.valid_from)),
        iso(r.valid_to === null ? null : Number(r.valid_to)),
      ].join(','),
    );
  }
  return out.join('\n') + '\n';
}
