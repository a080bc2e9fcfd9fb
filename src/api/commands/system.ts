/** Server commands: version, help, keepalive, close/exit/quit, info, reload, apireload, syncusers, apitest. */
import { ok, fail } from '../types.js';
import type { CommandDef } from '../registry.js';
import { NODE_COLUMNS, nodeFields, nodeRow } from '../nodestats.js';
import type { SipStack } from '../../sip/stack.js';

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ${Math.floor((s % 3600) / 60)}m ${s % 60}s`;
}

/** Options read only at start (listeners, database, logger). */
const RESTART_OPTIONS = [
  'mainaport',
  'usemainaport',
  'apibindaddr',
  'usetls',
  'tlsport',
  'tlscert',
  'tlskey',
  'dburl',
  'loglevel',
  'loglevels',
  'logdir',
  'logmaxsize',
  'logmaxfiles',
  'logrotate',
  'usesip',
  'sipport',
  'siptlsport',
  'sipwsport',
  'sipbindaddr',
  'sipmaxmessage',
  'sipmaxconnections',
  'sipdigest',
  'workers',
  'siprelayport',
];

export const systemCommands: CommandDef[] = [
  {
    name: 'apitest',
    aliases: ['apitest1'],
    params: [],
    level: 14,
    reqKey: 0,
    description: 'API test: answers OK without authentication',
    run: () => ok('API OK'),
  },
  {
    name: 'version',
    params: [],
    level: 6,
    description: 'display software version number',
    run: (ctx) => ok(`voxswitch ${ctx.services.version}`, { fields: { version: ctx.services.version } }),
  },
  {
    name: 'help',
    params: [],
    level: 14,
    reqKey: 0,
    description: 'the commands the caller may use',
    run: (ctx) => {
      const rows: Array<Record<string, unknown>> = [];
      for (const d of ctx.apis.commands()) {
        if (!ctx.mayUse(d.name)) continue;
        rows.push({
          name: [d.name, ...(d.aliases ?? [])].join('/'),
          params: d.params.join(','),
          available: d.available ? 'yes' : 'no',
          description: d.description,
        });
      }
      for (const n of ctx.apis.customOnly())
        if (ctx.mayUse(n))
          rows.push({ name: n, params: 'sparam1…', available: 'yes', description: 'custom SQL API (tb_api)' });
      return ok(`${rows.length} commands`, { columns: ['name', 'params', 'available', 'description'], rows });
    },
  },
  {
    name: 'keepalive',
    params: [],
    level: 14,
    reqKey: 0,
    description: 'keep alive the connection',
    run: () => ok('keepalive'),
  },
  {
    name: 'close',
    aliases: ['exit', 'quit'],
    params: [],
    level: 14,
    reqKey: 0,
    description: 'close current connection',
    run: () => ok('bye', { close: true }),
  },
  {
    name: 'info',
    params: [],
    level: 6,
    description: 'show server status and important parameters',
    run: async (ctx) => {
      const s = ctx.services;
      const m = process.memoryUsage();
      const users = await s.users.count();
      const fields: Record<string, string | number> = {
        version: s.version,
        uptime: uptime(Date.now() - s.startedAt),
        started: new Date(s.startedAt).toISOString(),
        database: s.storage.describe,
        users,
        banned: s.bans.list().length,
        live_calls: s.liveCalls.list().length,
        listeners: s.listeners.map((l) => `${l.kind} ${l.address}:${l.port}`).join('; '),
        memory_rss_mb: Math.round(m.rss / 1048576),
        memory_heap_mb: Math.round(m.heapUsed / 1048576),
        node: process.version,
        pid: process.pid,
        worker: process.env.VOXSWITCH_WORKER ?? 0,
      };
      for (const [k, v] of Object.entries(s.overload?.stats() ?? {})) fields[`overload_${k}`] = String(v);
      // with workers or the node relay: messages handed on, received, sends via another process, envelopes refused
      const handoff = (s.sip?.stack as Partial<Pick<SipStack, 'handoffStats'>> | undefined)?.handoffStats?.();
      for (const [k, v] of Object.entries(handoff ?? {})) fields[`sip_handoff_${k.toLowerCase()}`] = v;
      // this process's counters, the switch's totals and one row per live node (and worker)
      const view = await s.nodeStats?.view();
      if (view) Object.assign(fields, nodeFields(view));
      const now = Date.now();
      return ok(
        Object.entries(fields)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n'),
        view ? { fields, columns: NODE_COLUMNS, rows: view.nodes.map((n) => nodeRow(n, now)) } : { fields },
      );
    },
  },
  {
    name: 'reload',
    params: [],
    level: 6,
    description: 'reload current configuration',
    run: async (ctx) => {
      const before = { ...ctx.services.config.options };
      try {
        await ctx.services.reload();
      } catch (e) {
        return fail(`configuration not reloaded, the running one stays: ${(e as Error).message}`);
      }
      const after = ctx.services.config.options as Record<string, unknown>;
      const pending = RESTART_OPTIONS.filter(
        (k) => JSON.stringify((before as Record<string, unknown>)[k]) !== JSON.stringify(after[k]),
      );
      return ok(
        pending.length
          ? `configuration reloaded; restart the server to apply: ${pending.join(', ')}`
          : 'configuration reloaded',
        { fields: { restart_needed: pending.join(',') } },
      );
    },
  },
  {
    name: 'apireload',
    params: [],
    level: 6,
    description: 'reload tb_api (after adding or changing an entry)',
    run: async (ctx) => ok(`tb_api reloaded: ${await ctx.apis.reloadRules()} entries`),
  },
  {
    name: 'syncusers',
    params: [],
    level: 6,
    description: 'synchronise the cached users with the database',
    run: (ctx) => {
      ctx.services.users.clearCache();
      return ok('user cache cleared');
    },
  },
];
