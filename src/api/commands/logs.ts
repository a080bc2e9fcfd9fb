/**
 * The log areas through the API: showlog (the last lines of a log) and setloglevel (an area's level at run time);
 * showcfg (the effective configuration).
 */
import { ok } from '../types.js';
import type { CommandDef } from '../registry.js';
import { ApiError } from '../types.js';
import { maskedOptions, shownValue } from '../../config/mask.js';
import { optionSchemas } from '../../config/options.js';
import { LOG_AREAS, MAX_TAIL_LINES, isLogArea, isLogLevel, tailLines } from '../../ops/logs/index.js';

const AREAS = LOG_AREAS.join('/');
/** The document's areas that belong to the Mizu server's own modules. */
const ABSENT: Record<string, string> = {
  gk: 'voxswitch has no gatekeeper (H.323) module, so there is no gk log',
  sh: 'voxswitch has no separate SIP handler process, so there is no sh log (SIP is logged in sip)',
};

function areaOf(name: string | undefined): (typeof LOG_AREAS)[number] {
  const a = (name ?? '').trim().toLowerCase();
  if (!a) throw new ApiError(`log: name a log (${AREAS})`);
  if (ABSENT[a]) throw new ApiError(`${ABSENT[a]}; logs: ${AREAS}`);
  if (!isLogArea(a)) throw new ApiError(`unknown log "${a.slice(0, 32)}": logs are ${AREAS}`);
  return a;
}

export const logCommands: CommandDef[] = [
  {
    name: 'showlog',
    params: ['log', 'lines'],
    level: 6,
    description: `show the last lines of a log file (${AREAS}; lines default 100, at most ${MAX_TAIL_LINES})`,
    run: async (ctx, p) => {
      const area = areaOf(p.log);
      const raw = (p.lines ?? '').trim() || '100';
      if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_TAIL_LINES)
        throw new ApiError(`lines: a whole number from 1 to ${MAX_TAIL_LINES}`);
      const logs = ctx.services.ops.logs;
      const lines = await tailLines(logs.file(area), Number(raw));
      return ok(lines.join('\n'), {
        fields: { log: area, lines: lines.length, file: logs.file(area) },
        columns: ['line'],
        rows: lines.map((line) => ({ line })),
      });
    },
  },
  {
    name: 'setloglevel',
    params: ['log', 'level'],
    level: 6,
    description: `voxswitch: set a log area's level at run time (${AREAS}; fatal/error/warn/info/debug/trace/silent)`,
    run: (ctx, p) => {
      const area = areaOf(p.log);
      const level = (p.level ?? '').trim().toLowerCase();
      if (!isLogLevel(level))
        throw new ApiError(
          `level: one of fatal, error, warn, info, debug, trace, silent (not "${level.slice(0, 16)}")`,
        );
      const logs = ctx.services.ops.logs;
      const was = logs.level(area);
      logs.setLevel(area, level);
      logs.get('main').info({ log: area, level, was }, 'log level changed');
      return ok(`${area} log level ${level} (was ${was})`, { fields: { log: area, level, was } });
    },
  },
];

/** showcfg: the effective configuration (src/config/mask.ts masks the secrets) and where each value comes from. */
export const showcfgCommand: CommandDef = {
  name: 'showcfg',
  params: [],
  level: 6,
  description: 'show the effective configuration: each option, its value (secrets masked), default and source',
  run: (ctx) => {
    const config = ctx.services.config;
    const inFile = config.fileValues();
    const rows = maskedOptions(config.options).map(([option, value]) => {
      const from = config.isOverridden(option) ? 'command line' : option in inFile ? 'config file' : 'default';
      const def = optionSchemas[option as keyof typeof optionSchemas]?.def ?? '';
      return { option, value, default: shownValue(option, def), from };
    });
    const text = rows.map((r) => `${r.option}=${r.value}`).join('\n');
    return ok(text, {
      fields: { file: config.file, options: rows.length },
      columns: ['option', 'value', 'default', 'from'],
      rows,
    });
  },
};
