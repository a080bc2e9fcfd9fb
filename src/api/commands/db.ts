/** The db command: one admin SQL statement through the custom SQL engine (the server's DbRunner). */
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { callerOf } from './target.js';
import { compileTemplate, CustomSqlError } from '../customsql/template.js';
import { isAdminType } from '../../domain/accounts/types.js';

const SECRET_COLUMNS = new Set(['password_enc', 'forgot_answer_enc']);

async function dbCommand(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'db');
  if (!isAdminType(caller.type)) throw new ApiError('db is for admins only (user type srvadmin or admin)', 403);
  const txt = (p.txt ?? '').trim();
  if (!txt) return fail('txt: missing SQL statement');
  if (/password_enc|forgot_answer_enc/i.test(txt))
    return fail('db: statements naming password_enc or forgot_answer_enc are refused (use changepwd)');
  if (/u&["']/i.test(txt)) return fail('db: unicode-escaped identifiers/strings (U&"…") are refused');
  let kind: string;
  try {
    kind = compileTemplate(txt, s.storage.dialect).kind;
  } catch (e) {
    if (e instanceof CustomSqlError) return fail(`db: ${e.message}`);
    throw e;
  }
  const code = txt.replace(/'(?:[^']|'')*'/g, "''"); // words inside string literals are data
  if (kind !== 'select' && /\bcredit\b/i.test(code) && /\btb_users\b/i.test(code)) {
    return fail('db: credit changes must go through the ledger: use addcredit');
  }
  const sqlText = kind !== 'select' && !txt.startsWith('*') ? '*' + txt : txt;
  const sparams: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) if (/^sparam\d{1,2}$/.test(k)) sparams[k] = v;
  let r;
  try {
    r = await s.dbRunner.run(
      sqlText,
      { userId: caller.id, username: caller.username, sparams },
      s.config.get('customsqltimeout'),
    );
  } catch (e) {
    if (e instanceof CustomSqlError) return fail(`db: ${e.message}`);
    throw e;
  } finally {
    if (kind !== 'select') s.users.clearCache();
  }
  s.log.info({ by: caller.username, kind }, 'db command');
  if ('queued' in r) return ok('query queued');
  if (kind !== 'select') return ok(`${r.changes ?? 0} row(s) affected`, { fields: { changes: r.changes ?? 0 } });
  const columns = r.columns.filter((c) => !SECRET_COLUMNS.has(c.toLowerCase()));
  const rows = r.rows.map((row) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => !SECRET_COLUMNS.has(k.toLowerCase()))),
  );
  const text = r.truncated
    ? `${rows.length} rows (more rows matched: answers are limited to ${s.config.get('dbmaxrows')}, option dbmaxrows)`
    : `${rows.length} rows`;
  return ok(text, { columns, rows });
}

export const dbCommands: CommandDef[] = [
  {
    name: 'db',
    params: ['txt'],
    level: 6,
    description:
      'one SQL SELECT/INSERT/UPDATE/DELETE (admins only; time limit customsqltimeout, at most dbmaxrows rows)',
    run: dbCommand,
  },
];
