/**
 * One sipp run of the REGISTER → 401 → REGISTER+Authorization → 200 scenario at a fixed rate, read back from sipp's
 * statistics file (-trace_stat): successful, failed and retransmitted counts, and the wall time of the run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SIPP = '/usr/bin/sipp';
export const SCENARIO = resolve(process.cwd(), 'test/sip/scenarios/register_auth.xml');

export interface StepResult {
  rate: number;
  calls: number;
  ok: number;
  failed: number;
  retrans: number;
  seconds: number;
  /** registrations completed per second of the run */
  achieved: number;
  /** retransmissions per request sent (two REGISTERs per registration) */
  retransPct: number;
}

/** Injection file: the users in order (sipp wraps around), user `NAME` with password `pw-NAME`. */
export function writeUsersCsv(dir: string, users: readonly string[]): string {
  const f = join(dir, 'users.csv');
  const lines = ['SEQUENTIAL'];
  for (const u of users) lines.push(`${u};[authentication username=${u} password=pw-${u}]`);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

function lastStatRow(file: string): Map<string, string> {
  const rows = readFileSync(file, 'utf8').trim().split('\n');
  const head = (rows[0] ?? '').split(';');
  const last = (rows.at(-1) ?? '').split(';');
  const m = new Map<string, string>();
  head.forEach((h, i) => m.set(h.trim(), (last[i] ?? '').trim()));
  return m;
}

/**
 * Offers `rate` registrations/s for `seconds` (-m rate×seconds, -r rate -rp 1000, -l rate×4: a registration
 * takes far less than a second, so the limit never caps the offered rate).
 */
export function runStep(
  port: number,
  csv: string,
  rate: number,
  seconds: number,
  dir: string,
  scenario = SCENARIO,
): Promise<StepResult> {
  const calls = Math.round(rate * seconds);
  const tag = `s${rate}-${Date.now()}`;
  const statFile = join(dir, `${tag}.stat.csv`);
  const args = [
    `127.0.0.1:${port}`,
    '-sf',
    scenario,
    '-inf',
    csv,
    '-m',
    String(calls),
    '-r',
    String(rate),
    '-rp',
    '1000',
    '-l',
    String(rate * 4),
    '-i',
    '127.0.0.1',
    '-p',
    '0',
    '-t',
    'u1',
    '-nostdin',
    '-timeout',
    `${seconds * 3 + 10}s`,
    '-timeout_error',
    '-trace_stat',
    '-stf',
    statFile,
    '-fd',
    '1',
  ];
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(SIPP, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('close', () => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (!existsSync(statFile)) return rej(new Error(`sipp wrote no statistics: ${err.slice(-500)}`));
      const s = lastStatRow(statFile);
      const n = (k: string) => Number(s.get(k) ?? 0) || 0;
      const ok = n('SuccessfulCall(C)');
      const failed = n('FailedCall(C)');
      const retrans = n('Retransmissions(C)');
      // the statistics' own elapsed time, from the first call to the last row
      const elapsed = parseElapsed(s.get('ElapsedTime(C)') ?? '') || secs;
      res({
        rate,
        calls,
        ok,
        failed: failed + Math.max(0, calls - ok - failed),
        retrans,
        seconds: elapsed,
        achieved: ok / elapsed,
        retransPct: (100 * retrans) / Math.max(1, 2 * calls),
      });
    });
  });
}

/** sipp's `HH:MM:SS:mmmmmm` or `HH:MM:SS:mmm` elapsed time in seconds. */
function parseElapsed(v: string): number {
  const p = v.split(':').map(Number);
  if (p.length < 4 || p.some((x) => !Number.isFinite(x))) return 0;
  const frac = v.split(':')[3]!;
  return p[0]! * 3600 + p[1]! * 60 + p[2]! + p[3]! / 10 ** frac.length;
}
