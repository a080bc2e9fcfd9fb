/**
 * The command registry. Each command is declared once (name, aliases, parameters, default levels, handler)
 * in a file under commands/; dispatch is a map look-up.
 */
import type { ApiResult } from './types.js';
import type { CommandContext } from './context.js';
import type { CommandDecl } from './declaration.js';

export type { Level, UserMode } from './declaration.js';

export interface CommandDef extends CommandDecl {
  /** Handler; a command without one is declared but not available yet. */
  run?: (ctx: CommandContext, p: Record<string, string>) => Promise<ApiResult> | ApiResult;
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
