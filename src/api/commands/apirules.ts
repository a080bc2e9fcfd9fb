/**
 * The tb_api rules as commands (server admin only): apirules lists the rows, setapirule adds or changes one,
 * delapirule removes one. Rows are checked as the loader checks them (auth/ruletable.ts); they apply after
 * `apireload`, as rows written with SQL do.
 */
import { ok } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { deleteRule, listRules, parseRule, saveRule } from '../auth/ruletable.js';

const shown = (v: number | null) => (v === null ? '' : v);

function known(ctx: CommandContext): (name: string) => boolean {
  const names = new Set<string>();
  for (const c of ctx.apis.commands()) {
    names.add(c.name);
    for (const a of c.aliases ?? []) names.add(a);
  }
  return (n) => names.has(n);
}

export const apiRuleCommands: CommandDef[] = [
  {
    name: 'apirules',
    params: [],
    level: 4,
    description: 'the tb_api rows: fname, req_key, req_ip, req_user, req_user_mode (empty: the default), customsql',
    run: async (ctx) => {
      const rows = await listRules(ctx.services.storage.db);
      return ok(`${rows.length} tb_api rule(s)${rows.length ? ': ' + rows.map((r) => r.fname).join(',') : ''}`, {
        fields: { count: rows.length },
        columns: ['id', 'fname', 'req_key', 'req_ip', 'req_user', 'req_user_mode', 'customsql'],
        rows: rows.map((r) => ({
          id: r.id,
          fname: r.fname,
          req_key: shown(r.req_key),
          req_ip: shown(r.req_ip),
          req_user: shown(r.req_user),
          req_user_mode: shown(r.req_user_mode),
          customsql: r.customsql ?? '',
        })),
      });
    },
  },
  {
    name: 'setapirule',
    params: ['fname', 'req_key', 'req_ip', 'req_user', 'req_user_mode', 'customsql'],
    level: 4,
    description:
      'add or replace the tb_api rule of an API: fname, req_key 0|1, req_ip 0|1, req_user 2|4|…|14, ' +
      'req_user_mode 2|4|6 (empty: the default), customsql (a new API, checked before it is stored); apply with ' +
      'apireload',
    run: async (ctx, p) => {
      const db = ctx.services.storage.db;
      const rule = await parseRule(db, p, known(ctx));
      const r = await saveRule(db, rule);
      ctx.services.log.info({ fname: rule.fname, by: ctx.caller.user?.username }, 'tb_api rule saved');
      return ok(`tb_api rule ${rule.fname} ${r.created ? 'added' : 'changed'}; apireload applies it`, {
        fields: {
          fname: rule.fname,
          created: r.created ? 1 : 0,
          req_key: shown(rule.req_key),
          req_ip: shown(rule.req_ip),
          req_user: shown(rule.req_user),
          req_user_mode: shown(rule.req_user_mode),
        },
      });
    },
  },
  {
    name: 'delapirule',
    params: ['fname'],
    level: 4,
    description: 'delete the tb_api rule of an API (the command is back to its declared defaults after apireload)',
    run: async (ctx, p) => {
      const fname = await deleteRule(ctx.services.storage.db, p.fname);
      ctx.services.log.info({ fname, by: ctx.caller.user?.username }, 'tb_api rule deleted');
      return ok(`tb_api rule ${fname} deleted; apireload applies it`, { fields: { fname } });
    },
  },
];
