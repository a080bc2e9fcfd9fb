/**
 * Tariff CSV import from the console (the CLI's format and domain function, src/domain/rating/csv.ts). The answer
 * is NDJSON streamed while the import runs: `{"progress":{phase,done,total}}` lines, then one `{"result":...}`
 * line. All rows or none are written; the running rating is reloaded after a good import. Server admins and
 * admins only (the rank that may write tb_tariffs through setfield).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../../services.js';
import type { User } from '../../domain/accounts/users.js';
import { rankOf } from '../../domain/accounts/types.js';
import { importTariffsCsv } from '../../domain/rating/csv.js';
import { DEFAULT_PLAN } from '../../domain/rating/service.js';
import { readJson, sendError, SECURITY_HEADERS } from './web.js';

/** Largest CSV the console accepts (JSON-encoded body). */
export const TARIFF_CSV_MAX = 32 * 1024 * 1024;
const ADMIN_RANK = 6;

export async function importTariffs(s: Services, user: User, req: IncomingMessage, res: ServerResponse) {
  if (rankOf(user.type) > ADMIN_RANK) return sendError(res, 403, 'importing tariffs needs an admin account');
  const b = await readJson(req, TARIFF_CSV_MAX);
  const csv = typeof b.csv === 'string' ? b.csv : '';
  if (!csv.trim()) return sendError(res, 400, 'csv is required (the text of the tariff file, with its header row)');
  const plan = typeof b.plan === 'string' && b.plan.trim() ? b.plan.trim() : DEFAULT_PLAN;
  const replace = b.replace === true || b.replace === '1' || b.replace === 'true';
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  let last = 0;
  const line = (v: unknown) => res.write(`${JSON.stringify(v)}\n`);
  try {
    const r = await importTariffsCsv(s.storage.db, csv, {
      plan,
      replace,
      onProgress: (done, total, phase) => {
        const now = Date.now();
        if (now - last < 100 && done < total) return;
        last = now;
        line({ progress: { phase, done, total } });
      },
    });
    if (!r.errors.length) await s.rating.load();
    s.log.info(
      { user: user.username, plan: r.plan, imported: r.imported, bad: r.errors.length },
      'console tariff import',
    );
    line({ result: { ok: r.errors.length === 0, ...r } });
  } catch (e) {
    line({ result: { ok: false, imported: 0, errors: [{ line: 0, reason: (e as Error).message }], plan } });
  }
  res.end();
}
