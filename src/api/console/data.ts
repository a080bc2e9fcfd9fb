/**
 * CDR views of the web console: a filtered list, its CSV export and the chart series (calls per minute, ASR/ACD per
 * hour, revenue per day, top destinations), all read from tb_cdrs. Server and plain admins see every CDR; any other
 * account sees its own calls only.
 */
import type { ServerResponse } from 'node:http';
import type { Services } from '../../services.js';
import type { User } from '../../domain/accounts/users.js';
import { rankOf } from '../../domain/accounts/types.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { sendError, sendJson, SECURITY_HEADERS } from './web.js';

const DAY = 86_400_000;
const COLUMNS = [
  'id',
  'callid',
  'caller',
  'callee',
  'route',
  'start',
  'connect',
  'end',
  'duration',
  'cost',
  'currency',
];

interface CdrRow {
  id: number;
  callid: string;
  caller: string;
  callee: string;
  userid: number;
  route: string;
  start_at: number;
  connect_at: number | null;
  end_at: number;
  duration: number;
  cost: number;
  currency: string;
  reason: string;
}

interface Filter {
  from: number;
  to: number;
  callee: string;
  caller: string;
  limit: number;
}

function time(v: string | null, dflt: number): number {
  if (!v) return dflt;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  return Number.isFinite(n) ? n : dflt;
}

function filterOf(q: URLSearchParams, maxLimit: number, days = 1): Filter {
  const to = time(q.get('to'), Date.now() + 60_000);
  const limit = Math.min(maxLimit, Math.max(1, Number(q.get('limit') ?? maxLimit) || maxLimit));
  return {
    from: time(q.get('from'), to - days * DAY),
    to,
    callee: (q.get('callee') ?? '').trim().slice(0, 64),
    caller: (q.get('caller') ?? '').trim().slice(0, 64),
    limit,
  };
}

/** A CSV cell: quoted when needed; a leading = + - @ made inert for spreadsheets. */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export class ConsoleData {
  constructor(private readonly s: Services) {}

  async answer(route: string, q: URLSearchParams, user: User, res: ServerResponse): Promise<void> {
    if (route === 'cdrs') {
      const rows = await this.rows(user, filterOf(q, 500));
      return sendJson(res, 200, { columns: COLUMNS, rows: rows.map(view) });
    }
    if (route === 'cdrs.csv') {
      const rows = await this.rows(user, filterOf(q, 100_000, 31));
      const lines = [COLUMNS.join(','), ...rows.map((r) => COLUMNS.map((c) => csvCell(view(r)[c])).join(','))];
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="cdrs.csv"',
        'cache-control': 'no-store',
      });
      res.end(lines.join('\r\n') + '\r\n');
      return;
    }
    if (route === 'charts') {
      const days = Math.min(31, Math.max(1, Number(q.get('days') ?? 7) || 7));
      const rows = await this.rows(user, filterOf(q, 200_000, days));
      return sendJson(res, 200, charts(rows));
    }
    sendError(res, 404, 'no such data');
  }

  private async rows(user: User, f: Filter): Promise<CdrRow[]> {
    let q = this.s.storage.db
      .selectFrom('tb_cdrs')
      .select([
        'id',
        'callid',
        'caller',
        'callee',
        'userid',
        'route',
        'start_at',
        'connect_at',
        'end_at',
        'duration',
        'cost',
        'currency',
        'reason',
      ])
      .where('start_at', '>=', f.from)
      .where('start_at', '<', f.to);
    if (rankOf(user.type) > 6) q = q.where('userid', '=', user.id);
    if (f.callee) q = q.where('callee', 'like', `${escapeLike(f.callee)}%`);
    if (f.caller) q = q.where('caller', 'like', `${escapeLike(f.caller)}%`);
    const rows = await q.orderBy('start_at', 'desc').limit(f.limit).execute();
    return rows.map((r) => ({ ...r, start_at: Number(r.start_at), end_at: Number(r.end_at), cost: Number(r.cost) }));
  }
}

function escapeLike(s: string): string {
  return s.replace(/[%_\\]/g, '');
}

function iso(t: number | null): string {
  return t ? new Date(t).toISOString() : '';
}

function view(r: CdrRow): Record<string, string | number> {
  return {
    id: r.id,
    callid: r.callid,
    caller: r.caller,
    callee: r.callee,
    route: r.route,
    start: iso(r.start_at),
    connect: iso(r.connect_at === null ? null : Number(r.connect_at)),
    end: iso(r.end_at),
    duration: Number(r.duration),
    cost: formatAmount(r.cost),
    currency: r.currency,
  };
}

/** The chart series of a set of CDRs (times in seconds since the epoch, as uPlot takes them). */
export function charts(rows: CdrRow[]) {
  const perMinute = new Map<number, number>();
  const hours = new Map<number, { calls: number; answered: number; seconds: number }>();
  const revenue = new Map<number, number>();
  const dest = new Map<string, { calls: number; seconds: number }>();
  for (const r of rows) {
    const m = Math.floor(r.start_at / 60_000) * 60;
    perMinute.set(m, (perMinute.get(m) ?? 0) + 1);
    const h = Math.floor(r.start_at / 3_600_000) * 3600;
    const hv = hours.get(h) ?? { calls: 0, answered: 0, seconds: 0 };
    hv.calls++;
    if (r.connect_at) {
      hv.answered++;
      hv.seconds += Number(r.duration);
    }
    hours.set(h, hv);
    const d = Math.floor(r.start_at / DAY) * 86400;
    revenue.set(d, (revenue.get(d) ?? 0) + r.cost);
    const key = r.callee.replace(/[^0-9]/g, '').slice(0, 4) || r.callee.slice(0, 16) || '(none)';
    const dv = dest.get(key) ?? { calls: 0, seconds: 0 };
    dv.calls++;
    dv.seconds += Number(r.duration);
    dest.set(key, dv);
  }
  const sorted = <T>(m: Map<number, T>) => [...m].sort((a, b) => a[0] - b[0]);
  const h = sorted(hours);
  return {
    calls: rows.length,
    perMinute: [sorted(perMinute).map(([t]) => t), sorted(perMinute).map(([, n]) => n)],
    asrAcd: [
      h.map(([t]) => t),
      h.map(([, v]) => Math.round((100 * v.answered) / v.calls)),
      h.map(([, v]) => (v.answered ? Math.round(v.seconds / v.answered) : 0)),
    ],
    revenuePerDay: [sorted(revenue).map(([t]) => t), sorted(revenue).map(([, c]) => c / 1_000_000)],
    topDestinations: [...dest]
      .sort((a, b) => b[1].calls - a[1].calls)
      .slice(0, 10)
      .map(([prefix, v]) => ({ prefix, calls: v.calls, minutes: Math.round(v.seconds / 6) / 10 })),
  };
}
