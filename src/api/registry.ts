/**
 * The command registry. Each command is declared once (name, aliases, parameters, default levels, handler)
 * in a file under commands/; dispatch is a map look-up.
 */
import type { ApiResult } from './types.js';
import type { CommandContext } from './context.js';

/** req_user levels of the document: 0 default, 2 disabled, 4 srvadmin, 6 admins, 8 owners/resellers, 10 support, 12 all, 14 public. */
export type Level = 0 | 2 | 4 | 6 | 8 | 10 | 12 | 14;
/** req_user_mode: 0 default (apiv2auth), 2 user+pwd or pin, 4 user or pwd or pin, 6 user+pwd only. */
export type UserMode = 0 | 2 | 4 | 6;

export interface CommandDef {
  name: string;
  aliases?: string[];
  /** Parameter names in the documented order (param1…paramN map onto these). */
  params: string[];
  /**
   * Other names a declared parameter is read from when it is not given (nor an alias of it), in order: the rule
   * for a parameter the vendor's examples pass under another name (rating's number in `anum`, charge's PIN in
   * `anum`). A value under the declared name always wins.
   */
  fallbacks?: Record<string, string[]>;
  description: string;
  /** Default req_user. */
  level: Level;
  /** Default req_key (1: authkey required unless the source is trusted). */
  reqKey?: 0 | 1;
  /** Default req_ip (1: only local/LAN/apiv2ipauth addresses). */
  reqIp?: 0 | 1;
  /** Default req_user_mode. */
  userMode?: UserMode;
  /** Handler; a command without one is declared but not available yet. */
  run?: (ctx: CommandContext, p: Record<string, string>) => Promise<ApiResult> | ApiResult;
  /** Why it is unavailable (shown in the ERROR) when there is no handler. */
  unavailable?: string;
}

export class Registry {
  private byName = new Map<string, CommandDef>();
  private list: CommandDef[] = [];

  add(...defs: CommandDef[]): this {
    for (const d of defs) {
      for (const n of [d.name, ...(d.aliases ?? [])]) {
        const key = n.toLowerCase();
        if (this.byName.has(key)) throw new Error(`command "${key}" declared twice`);
        this.byName.set(key, d);
      }
      this.list.push(d);
    }
    return this;
  }

  get(name: string): CommandDef | undefined {
    return this.byName.get(name.toLowerCase());
  }

  all(): readonly CommandDef[] {
    return this.list;
  }
}

/** Parameter aliases of the document: anum/phone1/from, bnum/phone2/to, txt/message. */
const ALIASES: Record<string, string[]> = {
  anum: ['phone1', 'from'],
  phone1: ['anum', 'from'],
  from: ['anum', 'phone1'],
  bnum: ['phone2', 'to'],
  phone2: ['bnum', 'to'],
  to: ['bnum', 'phone2'],
  txt: ['message'],
  message: ['txt'],
};

/** The command's parameters by their declared names: named (or an alias), else positional, else a fallback. */
export function bindParams(
  def: CommandDef,
  named: Record<string, string>,
  positional: string[],
): Record<string, string> {
  const out: Record<string, string> = { ...named };
  const first = (names: string[]) => names.map((n) => named[n]).find((v) => v !== undefined);
  def.params.forEach((p, i) => {
    let v = first([p, ...(ALIASES[p] ?? [])]);
    if (v === undefined && positional[i] !== undefined) v = positional[i];
    for (const f of def.fallbacks?.[p] ?? []) if (v === undefined) v = first([f, ...(ALIASES[f] ?? [])]);
    if (v !== undefined) out[p] = v;
  });
  return out;
}
