/** User search: substring search within what the caller may see; end users get an exact public look-up. */
import { ok, fail, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { callerOf } from './target.js';
import { seeScope } from '../../domain/accounts/access.js';
import {
  searchUsers,
  publicLookup,
  MANAGER_COLUMNS,
  PUBLIC_COLUMNS,
  type SearchField,
} from '../../domain/accounts/search.js';

async function search(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'search');
  let limit = 20;
  if (p.limit !== undefined && p.limit.trim() !== '') {
    if (!/^\d{1,6}$/.test(p.limit.trim()) || Number(p.limit) < 1) return fail('limit: expected a number from 1 to 100');
    limit = Math.min(100, Number(p.limit));
  }
  let term: string | undefined;
  let field: SearchField = 'all';
  const pick = (v: string | undefined, f: SearchField) => {
    if (term === undefined && v !== undefined && v.trim() !== '') {
      term = v.trim();
      field = f;
    }
  };
  pick(p.txt, 'all');
  pick(p.search, 'all');
  pick(p.name, 'name');
  pick(p.username, 'username');
  pick(p.email, 'email');
  pick(p.phone, 'phone');
  if (term === undefined) return fail('txt: give a search text (or name, username, email or phone)');
  if (term.length > 128) return fail('txt: at most 128 characters');

  const db = s.storage.db;
  const scope = await seeScope(s.users, caller);
  if (!scope) {
    const rows = await publicLookup(db, term, limit);
    return ok(`${rows.length} user(s)`, {
      columns: PUBLIC_COLUMNS,
      rows: rows as unknown as Array<Record<string, unknown>>,
    });
  }
  const rows = await searchUsers(db, scope, term, field, limit);
  return ok(`${rows.length} user(s)`, {
    columns: MANAGER_COLUMNS,
    rows: rows as unknown as Array<Record<string, unknown>>,
  });
}

export const searchCommands: CommandDef[] = [
  {
    name: 'search',
    params: ['txt', 'limit'],
    level: 12,
    description:
      'user search by username, name, phone/DID or e-mail (txt, or name/username/email/phone; ' +
      'limit 1-100, default 20) within your part of the hierarchy',
    run: search,
  },
];
