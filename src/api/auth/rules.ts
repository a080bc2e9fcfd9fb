/**
 * The effective authentication rule of an API: the command's declared defaults, overridden field by field by
 * its tb_api row: req_key/req_ip 0 or 1 override; req_user/req_user_mode 0 (or NULL) keep the default. Rows
 * with customsql define new APIs or replace one.
 * Loaded at start; `apireload` re-reads the table. Custom SQL templates are checked as they are loaded
 * (src/api/customsql/check.ts); a refused one is kept with its reason and answered with it, never run.
 */
import type { Kysely } from 'kysely';
import type { Database, ApiTable } from '../../storage/schema.js';
import type { CommandDecl, Level, UserMode } from '../declaration.js';
import { checkStoredTemplate } from '../customsql/check.js';
import { CustomSqlError } from '../customsql/template.js';

export interface Rule {
  reqKey: 0 | 1;
  reqIp: 0 | 1;
  reqUser: Level;
  userMode: UserMode;
  customsql?: string;
  /** Why the custom SQL template was refused when the rules were loaded (it is then never run). */
  refused?: string;
}

type Row = Omit<ApiTable, 'id'> & { refused?: string };
const LEVELS = new Set([2, 4, 6, 8, 10, 12, 14]);
const MODES = new Set([2, 4, 6]);

export class ApiRules {
  private rows = new Map<string, Row>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly onRefused: (fname: string, reason: string) => void = () => undefined,
  ) {}

  async load(): Promise<number> {
    const rows = await this.db
      .selectFrom('tb_api')
      .select(['fname', 'req_key', 'req_ip', 'req_user', 'req_user_mode', 'customsql'])
      .execute();
    const loaded = new Map<string, Row>();
    for (const r of rows) {
      const row: Row = { ...r };
      if (r.customsql && r.customsql.trim()) {
        try {
          await checkStoredTemplate(this.db, r.customsql.trim());
        } catch (e) {
          if (!(e instanceof CustomSqlError)) throw e;
          row.refused = `custom API ${r.fname} was refused when loaded: ${e.message}`;
          this.onRefused(r.fname, e.message);
        }
      }
      loaded.set(r.fname.trim().toLowerCase(), row);
    }
    this.rows = loaded;
    return this.rows.size;
  }

  row(name: string): Row | undefined {
    return this.rows.get(name);
  }

  /** Names of custom APIs (tb_api rows with customsql). */
  customNames(): string[] {
    return [...this.rows.entries()].filter(([, r]) => r.customsql && r.customsql.trim()).map(([n]) => n);
  }

  /** The rule for a command (def) or a tb_api-only API (def undefined); undefined when neither exists. */
  resolve(name: string, def: CommandDecl | undefined, defaultMode: UserMode): Rule | undefined {
    const row = this.rows.get(name);
    if (!def && !(row?.customsql && row.customsql.trim())) return undefined;
    const base: Rule = {
      reqKey: def?.reqKey ?? 1,
      reqIp: def?.reqIp ?? 0,
      reqUser: def?.level ?? 12,
      userMode: def?.userMode ?? 0,
    };
    if (row) {
      if (row.req_key === 0 || row.req_key === 1) base.reqKey = row.req_key;
      if (row.req_ip === 0 || row.req_ip === 1) base.reqIp = row.req_ip;
      if (row.req_user != null && LEVELS.has(Number(row.req_user))) base.reqUser = Number(row.req_user) as Level;
      if (row.req_user_mode != null && MODES.has(Number(row.req_user_mode)))
        base.userMode = Number(row.req_user_mode) as UserMode;
      if (row.customsql && row.customsql.trim()) base.customsql = row.customsql.trim();
      if (row.refused) base.refused = row.refused;
    }
    if (!base.userMode) base.userMode = defaultMode;
    return base;
  }
}
