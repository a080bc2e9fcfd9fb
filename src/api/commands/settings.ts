/**
 * The document's ini-file and settings commands on the config file and the settings table (src/ops/settings):
 * setini/getini (one option in voxswitch.conf), loadinifiles (file → tb_settings), saveinifiles/savesettings
 * (tb_settings rows not yet saved → file). Nothing changes the running configuration until `reload`.
 */
import { ok } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';

function by(ctx: CommandContext): string {
  return ctx.caller.user?.username ?? `${ctx.caller.via}@${ctx.req.source.ip}`;
}

const APPLY = 'run reload to apply';

function written(file: string, names: string[]): string {
  return names.length
    ? `${names.length} setting(s) written to ${file}: ${names.join(', ')}; ${APPLY}`
    : `no unsaved settings: ${file} is unchanged`;
}

/** `notsaved`: 1 (default) writes only the rows not yet saved, 0 every row of the modules. */
function onlyUnsaved(v: string | undefined): boolean {
  return !/^(0|false|no|all)$/i.test((v ?? '').trim());
}

export const settingsCommands: CommandDef[] = [
  {
    name: 'getini',
    params: ['section', 'key', 'file'],
    level: 6,
    description: 'read one option from the config file (voxswitch.conf; sections as showcfg groups them)',
    run: (ctx, p) => {
      const v = ctx.services.ops.settings.getIni(p.section, p.key, p.file);
      return ok(v.value, { fields: { ...v } });
    },
  },
  {
    name: 'setini',
    params: ['section', 'key', 'value', 'file'],
    level: 6,
    description: 'write one option into the config file, validated with the whole file (applied by reload)',
    run: async (ctx, p) => {
      const s = ctx.services;
      const r = await s.ops.settings.setIni(p.section, p.key, p.value, p.file, by(ctx));
      const override = s.config.isOverridden(r.name) ? ` (this run's --set ${r.name} still overrides it)` : '';
      return ok(`[${r.section}] ${r.name} written to ${r.file}; ${APPLY}${override}`, {
        fields: { section: r.section, key: r.name, file: r.file },
      });
    },
  },
  {
    name: 'savesettings',
    params: [],
    level: 6,
    description: 'write the settings table rows not yet saved into the config file (applied by reload)',
    run: async (ctx) => {
      const r = await ctx.services.ops.settings.saveIniFiles('all', '', true, by(ctx));
      return ok(written(r.file, r.written), { fields: { file: r.file, written: r.written.join(',') } });
    },
  },
  {
    name: 'saveinifiles',
    params: ['module', 'file', 'notsaved'],
    level: 6,
    description:
      'write the settings table rows of a section (or all) into the config file; notsaved=0 writes every row',
    run: async (ctx, p) => {
      const r = await ctx.services.ops.settings.saveIniFiles(p.module, p.file, onlyUnsaved(p.notsaved), by(ctx));
      return ok(written(r.file, r.written), { fields: { file: r.file, written: r.written.join(',') } });
    },
  },
  {
    name: 'loadinifiles',
    params: ['module', 'file'],
    level: 6,
    description:
      'load the config file options of a section (or all) into the settings table (secrets stay in the file)',
    run: async (ctx, p) => {
      const r = await ctx.services.ops.settings.loadIniFiles(p.module, p.file, by(ctx));
      const notes = [
        r.discarded.length ? `unsaved rows replaced: ${r.discarded.join(', ')}` : '',
        r.secrets.length ? `secrets kept in the file only: ${r.secrets.join(', ')}` : '',
      ].filter(Boolean);
      return ok(`${r.loaded.length} setting(s) loaded from ${r.file}${notes.length ? '; ' + notes.join('; ') : ''}`, {
        fields: {
          file: r.file,
          loaded: r.loaded.join(','),
          discarded: r.discarded.join(','),
          secrets: r.secrets.join(','),
        },
      });
    },
  },
];
