/**
 * User search within what the caller may see (the scope comes from the hierarchy rule, access.ts):
 * - a scope (every account, or one subtree) is searched by substring;
 * - end users (no scope) see only public fields (username, name) of enabled accounts, and only by an exact
 *   username or phone/DID match (no substring scanning of the user base; the username match is exact as stored
 *   or in lower case, so it uses the unique index).
 * Queries are built with kysely, parameterised; LIKE patterns escape %, _ and \.
 */
import { sql, type Kysely, type SqlBool } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Scope } from './access.js';

export type SearchField = 'all' | 'username' | 'name' | 'email' | 'phone';

export interface ManagerRow {
  id: number;
  username: string;
  name: string;
  email: string;
  phone: string;
  type: number;
  parentid: number;
}

export interface PublicRow {
  username: string;
  name: string;
}

export const MANAGER_COLUMNS = ['id', 'username', 'name', 'email', 'phone', 'type', 'parentid'];
export const PUBLIC_COLUMNS = ['username', 'name'];

/** Escapes LIKE wildcards (and the escape character itself) for a pattern used with ESCAPE '\'. */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

function digitsOf(s: string): string {
  return s.replace(/[\s()./-]/g, '');
}

/** Ids of the subtree under rootId (including it), as a recursive CTE usable as a sub-query. */
function subtreeQuery(db: Kysely<Database>, rootId: number) {
  return db
    .withRecursive('sub(id)', (qb) =>
      qb
        .selectFrom('tb_users')
        .select('tb_users.id')
        .where('tb_users.id', '=', rootId)
        .union(qb.selectFrom('tb_users').innerJoin('sub', 'sub.id', 'tb_users.parentid').select('tb_users.id')),
    )
    .selectFrom('sub')
    .select('sub.id');
}

/** Substring search (case-insensitive) within a scope; `field` limits the columns searched. */
export async function searchUsers(
  db: Kysely<Database>,
  scope: Scope,
  term: string,
  field: SearchField,
  limit: number,
): Promise<ManagerRow[]> {
  const pattern = `%${escapeLike(term.toLowerCase())}%`;
  const digits = digitsOf(term);
  const numPattern = digits ? `%${escapeLike(digits.toLowerCase())}%` : undefined;
  const like = (col: 'username' | 'name' | 'email' | 'phone' | 'did', p: string) =>
    sql<SqlBool>`lower(${sql.ref(`tb_users.${col}`)}) like ${p} escape '\\'`;
  let q = db
    .selectFrom('tb_users')
    .select([
      'tb_users.id',
      'tb_users.username',
      'tb_users.name',
      'tb_users.email',
      'tb_users.phone',
      'tb_users.type',
      'tb_users.parentid',
    ]);
  q = q.where((eb) => {
    const ors = [];
    if (field === 'all' || field === 'username') ors.push(like('username', pattern));
    if (field === 'all' || field === 'name') ors.push(like('name', pattern));
    if (field === 'all' || field === 'email') ors.push(like('email', pattern));
    if ((field === 'all' || field === 'phone') && numPattern) {
      ors.push(like('phone', numPattern));
      ors.push(like('did', numPattern));
    }
    return ors.length ? eb.or(ors) : sql<SqlBool>`1 = 0`;
  });
  if (!scope.all) {
    const root = scope.rootId;
    q = q.where('tb_users.id', 'in', subtreeQuery(db, root));
  }
  const rows = await q.orderBy('tb_users.id').limit(limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    username: r.username,
    name: r.name,
    email: r.email,
    phone: r.phone,
    type: Number(r.type),
    parentid: Number(r.parentid),
  }));
}

/**
 * End users: exact username (as stored, or the term in lower case), phone or DID of enabled accounts; public fields
 * only.
 */
export async function publicLookup(db: Kysely<Database>, term: string, limit: number): Promise<PublicRow[]> {
  const t = term.trim();
  if (!t) return [];
  const digits = digitsOf(t);
  const rows = await db
    .selectFrom('tb_users')
    .select(['username', 'name'])
    .where('enabled', '=', 1)
    .where((eb) => {
      // exact username as stored or in lower case: both use the unique index (no scan of the user base)
      const ors = [eb('username', 'in', [...new Set([t, t.toLowerCase()])])];
      if (/^\+?\d{2,20}$/.test(digits)) {
        ors.push(eb('phone', '=', digits));
        ors.push(eb('did', '=', digits));
      }
      return eb.or(ors);
    })
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ username: r.username, name: r.name }));
}
