/**
 * Writing the tb_api table (the rules auth/rules.ts loads): a row is checked whole before it is stored, so no write
 * leaves a rule the loader would have to refuse: the API name as the decoder accepts it, 0/1 or default for req_key and
 * req_ip, a document level for req_user and req_user_mode, a custom SQL template checked as the loader checks it.
 * Writes take effect with `apireload` (as a row inserted with SQL does); the rules of the commands that write this
 * table cannot be changed through them.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { checkStoredTemplate } from '../customsql/check.js';
import { ApiError } from '../types.js';

export interface RuleRow {
  id: number;
  fname: string;
  req_key: number | null;
  req_ip: number | null;
  req_user: number | null;
  req_user_mode: number | null;
  customsql: string | null;
}

export type RuleInput = Omit<RuleRow, 'id'>;

/** The commands that read and write tb_api: their own rule stays as declared (server admin only). */
export const RULE_COMMANDS = ['apirules', 'setapirule', 'delapirule'];
export const LEVELS = [2, 4, 6, 8, 10, 12, 14];
export const MODES = [2, 4, 6];
const NAME_RE = /^[a-z0-9_.-]{1,64}$/;
const MAX_SQL = 8000;

/** An empty value, "default" or 0 keeps the command's default (NULL); else one of `allowed`. */
function choice(v: string | undefined, name: string, allowed: number[], zeroIsDefault: boolean): number | null {
  const t = (v ?? '').trim().toLowerCase();
  if (t === '' || t === 'default' || (zeroIsDefault && t === '0')) return null;
  if (!/^\d{1,2}$/.test(t) || !allowed.includes(Number(t)))
    throw new ApiError(`${name}: expected ${allowed.join(', ')} or empty for the default, got "${t.slice(0, 20)}"`);
  return Number(t);
}

/** The rule name of a request parameter (lower case, as the decoder reads API names). */
export function ruleName(raw: string | undefined): string {
  const fname = (raw ?? '').trim().toLowerCase();
  if (!fname) throw new ApiError('fname: the API name the rule is for', 421);
  if (!NAME_RE.test(fname))
    throw new ApiError(`fname: 1-64 characters of a-z, 0-9 and _.- (an API entry name), got "${fname.slice(0, 64)}"`);
  return fname;
}

/**
 * Checks a rule's parameters (fname, req_key, req_ip, req_user, req_user_mode, customsql). `known` tells whether a
 * name is a declared command: a row without custom SQL must name one (else it would do nothing).
 */
export async function parseRule(
  db: Kysely<Database>,
  p: Record<string, string | undefined>,
  known: (name: string) => boolean,
): Promise<RuleInput> {
  const fname = ruleName(p.fname);
  if (RULE_COMMANDS.includes(fname))
    throw new ApiError(`fname: the rule of ${fname} cannot be changed (it would open the rules to other accounts)`);
  const customsql = (p.customsql ?? '').trim() || null;
  if (customsql && customsql.length > MAX_SQL)
    throw new ApiError(`customsql: at most ${MAX_SQL} characters, got ${customsql.length}`);
  if (!customsql && !known(fname))
    throw new ApiError(`fname: no command ${fname}; a rule for a new API needs its customsql`, 404);
  // the loader's own check (compiles on every database; the strict guard on SQLite): a refused one is not stored
  if (customsql) await checkStoredTemplate(db, customsql);
  return {
    fname,
    req_key: choice(p.req_key, 'req_key', [0, 1], false),
    req_ip: choice(p.req_ip, 'req_ip', [0, 1], false),
    req_user: choice(p.req_user, 'req_user', LEVELS, true),
    req_user_mode: choice(p.req_user_mode, 'req_user_mode', MODES, true),
    customsql,
  };
}

export async function listRules(db: Kysely<Database>): Promise<RuleRow[]> {
  const rows = await db.selectFrom('tb_api').selectAll().orderBy('fname').execute();
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** Inserts the rule, or replaces the row of the same fname; answers whether it was new. */
export async function saveRule(db: Kysely<Database>, r: RuleInput): Promise<{ created: boolean }> {
  return db.transaction().execute(async (trx) => {
    const old = await trx.selectFrom('tb_api').select('id').where('fname', '=', r.fname).executeTakeFirst();
    if (old) {
      await trx.updateTable('tb_api').set(r).where('id', '=', old.id).execute();
      return { created: false };
    }
    await trx.insertInto('tb_api').values(r).execute();
    return { created: true };
  });
}

export async function deleteRule(db: Kysely<Database>, raw: string | undefined): Promise<string> {
  const fname = ruleName(raw);
  const r = await db.deleteFrom('tb_api').where('fname', '=', fname).executeTakeFirst();
  if (Number(r.numDeletedRows) !== 1) throw new ApiError(`no tb_api rule for ${fname}`, 404);
  return fname;
}
