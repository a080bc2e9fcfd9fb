/**
 * Introspection: deviceid, fastusers, locks, threadlist/threads/threads2, querylist, cancelquery, dbreset, delobj.
 */
import { ok } from '../types.js';
import { ApiError } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { rawQuery } from '../../storage/db.js';
import { PG_APPLICATION } from '../../storage/db.js';
import { resetStorage } from '../../storage/reset.js';
import { RoutingService } from '../../domain/routing/service.js';
import { activeResources } from '../../ops/runtime.js';

const iso = (t: number | null | undefined) => (t ? new Date(Number(t)).toISOString() : '');

/** The caches `delobj` drops, each with what dropping it does. */
const CACHES: Record<string, { what: string; drop: (ctx: CommandContext) => Promise<string> | string }> = {
  users: {
    what: 'the authentication cache of accounts (and the ledger balance cache)',
    drop: (ctx) => {
      const n = ctx.services.users.cachedUsers().length;
      ctx.services.users.clearCache();
      return `${n} cached users dropped`;
    },
  },
  rating: {
    what: 'the tariffs held in memory (read again from the database)',
    drop: async (ctx) => {
      await ctx.services.rating.load();
      return 'tariffs reloaded';
    },
  },
  routes: {
    what: 'the cached gateway list',
    drop: () => {
      RoutingService.invalidate();
      return 'gateway list dropped (read again on the next call)';
    },
  },
  rules: {
    what: 'the tb_api rules',
    drop: async (ctx) => `tb_api reloaded: ${await ctx.apis.reloadRules()} entries`,
  },
  bans: {
    what: "this process's copy of the bans (read again from tb_bans)",
    drop: async (ctx) => {
      await ctx.services.bans.load();
      return `bans reloaded: ${ctx.services.bans.list().length} active`;
    },
  },
  statements: {
    what: 'the prepared SQLite statements',
    drop: (ctx) => {
      const s = ctx.services.storage.sqlite;
      if (!s) return 'PostgreSQL: no prepared statements are cached by voxswitch';
      return `${s.clearStatements()} prepared statements dropped`;
    },
  },
};

export const introspectCommands: CommandDef[] = [
  {
    name: 'deviceid',
    params: [],
    level: 6,
    description: 'show device id (the installation id in <datadir>/device.id, and this node)',
    run: (ctx) => {
      const o = ctx.services.ops;
      return ok(o.deviceId, { fields: { deviceid: o.deviceId, node: o.node } });
    },
  },
  {
    name: 'fastusers',
    params: [],
    level: 6,
    description: 'list cached users (the authentication cache; passwords never shown)',
    run: (ctx) => {
      const rows = ctx.services.users.cachedUsers().map((e) => ({
        authid: e.authid,
        userid: e.user?.id ?? '',
        username: e.user?.username ?? '(not found)',
        enabled: e.user ? (e.user.enabled ? 1 : 0) : '',
        age_ms: e.ageMs,
      }));
      return ok(`${rows.length} cached users`, {
        columns: ['authid', 'userid', 'username', 'enabled', 'age_ms'],
        rows,
      });
    },
  },
  {
    name: 'locks',
    params: [],
    level: 6,
    description: 'list of pending locks: number locks, credit reservations, maintenance job leases',
    run: async (ctx) => {
      const db = ctx.services.storage.db;
      const now = Date.now();
      const numbers = await db
        .selectFrom('tb_numbers')
        .select(['number', 'userid', 'locked_until'])
        .where('status', '=', 'locked')
        .where('locked_until', '>', now)
        .execute();
      const held = await db.selectFrom('tb_reservations').selectAll().execute();
      const jobs = await db.selectFrom('tb_jobs').selectAll().where('lease_until', '>', now).execute();
      const rows = [
        ...numbers.map((n) => ({
          kind: 'number',
          what: n.number,
          owner: `user ${n.userid}`,
          since: '',
          until: iso(n.locked_until),
        })),
        ...held.map((r) => ({
          kind: 'reservation',
          what: `${r.callid}${r.leg ? `/${r.leg}` : ''}: ${Number(r.amount) / 1e6}`,
          owner: `user ${r.userid} on ${r.node}`,
          since: iso(r.created_at),
          until: iso(r.expires_at),
        })),
        ...jobs.map((j) => ({
          kind: 'job',
          what: j.name,
          owner: j.node,
          since: iso(j.started_at),
          until: iso(j.lease_until),
        })),
      ];
      return ok(`${numbers.length} number locks, ${held.length} credit reservations, ${jobs.length} jobs running`, {
        columns: ['kind', 'what', 'owner', 'since', 'until'],
        rows,
      });
    },
  },
  {
    name: 'threadlist',
    aliases: ['threads', 'threads2'],
    params: [],
    level: 6,
    description: 'the Node equivalents of threads: workers, event loop delay/utilisation, active handles by kind',
    run: async (ctx) => {
      const s = ctx.services;
      const loop = s.ops.runtime.loop();
      const m = process.memoryUsage();
      const view = await s.nodeStats?.view();
      const fields: Record<string, string | number> = {
        pid: process.pid,
        node: s.ops.node,
        worker: process.env.VOXSWITCH_WORKER ?? 0,
        processes: view?.nodes.length ?? 1,
        uptime_s: Math.round(process.uptime()),
        rss_mb: Math.round(m.rss / 1048576),
        heap_mb: Math.round(m.heapUsed / 1048576),
        ...loop,
      };
      const rows = activeResources();
      const text = [
        ...Object.entries(fields).map(([k, v]) => `${k}: ${v}`),
        ...rows.map((r) => `active ${r.kind}: ${r.count}`),
      ].join('\r\n');
      return ok(text, { fields, columns: ['kind', 'count'], rows });
    },
  },
  {
    name: 'querylist',
    params: [],
    level: 6,
    description: 'running database queries with their age (PostgreSQL: pg_stat_activity), and running jobs',
    run: async (ctx) => {
      const st = ctx.services.storage;
      const jobs = await st.db.selectFrom('tb_jobs').selectAll().where('lease_until', '>', Date.now()).execute();
      const jobRows = jobs.map((j) => ({
        pid: '',
        state: `job ${j.name} on ${j.node}`,
        age_s: Math.round((Date.now() - Number(j.started_at ?? 0)) / 1000),
        query: '',
      }));
      const backup = ctx.services.ops.backups.busy ? [{ pid: '', state: 'backup', age_s: '', query: '' }] : [];
      if (st.dialect === 'sqlite') {
        return ok(
          'SQLite runs each statement to its end on the server thread: none is running while this answers ' +
            `(shown: running maintenance jobs and backups, ${jobRows.length + backup.length})`,
          { columns: ['pid', 'state', 'age_s', 'query'], rows: [...jobRows, ...backup] },
        );
      }
      const q = await rawQuery<{ pid: number; state: string; age_s: number; query: string }>(
        st.db,
        'SELECT pid, state, EXTRACT(EPOCH FROM (now() - query_start))::float AS age_s, left(query, 300) AS query ' +
          "FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() AND state <> 'idle' " +
          'ORDER BY query_start',
        [PG_APPLICATION],
      );
      const rows = q.map((r) => ({ ...r, age_s: Math.round(Number(r.age_s) * 10) / 10 }));
      return ok(`${rows.length} queries running (cancel one with cancelquery pid)`, {
        columns: ['pid', 'state', 'age_s', 'query'],
        rows: [...rows, ...jobRows, ...backup],
      });
    },
  },
  {
    name: 'cancelquery',
    params: ['pid'],
    level: 6,
    description: 'cancel a running PostgreSQL query of voxswitch (pid from querylist)',
    run: async (ctx, p) => {
      const st = ctx.services.storage;
      if (st.dialect !== 'pg')
        throw new ApiError('cancelquery needs PostgreSQL: SQLite runs no query in the background');
      const pid = Number(p.pid);
      if (!Number.isInteger(pid) || pid <= 0) throw new ApiError('pid: expected the number querylist shows');
      const r = await rawQuery<{ c: boolean | null }>(
        st.db,
        'SELECT pg_cancel_backend(pid) AS c FROM pg_stat_activity WHERE pid = $1 AND application_name = $2',
        [pid, PG_APPLICATION],
      );
      if (!r.length) throw new ApiError(`no voxswitch query with pid ${pid} is running`, 404);
      if (!r[0]!.c) throw new ApiError(`query ${pid} could not be cancelled`);
      ctx.services.log.warn({ pid }, 'database query cancelled (cancelquery)');
      return ok(`query ${pid} cancelled`);
    },
  },
  {
    name: 'dbreset',
    params: [],
    level: 6,
    description: 'reset database connections (reopen them)',
    run: async (ctx) => {
      if (ctx.services.ops.backups.busy) throw new ApiError('a backup is running: dbreset waits until it has ended');
      const text = await resetStorage(ctx.services.storage);
      ctx.services.log.info({ result: text }, 'database connections reset');
      return ok(text);
    },
  },
  {
    name: 'delobj',
    params: ['obj'],
    level: 6,
    description: `free objects: drop a named cache (${Object.keys(CACHES).join(', ')}, or all)`,
    run: async (ctx, p) => {
      const name = (p.obj ?? '').trim().toLowerCase();
      const names = name === 'all' ? Object.keys(CACHES) : [name];
      if (!names.every((n) => CACHES[n]))
        throw new ApiError(
          `delobj: unknown object "${p.obj ?? ''}"; one of: ${Object.entries(CACHES)
            .map(([n, c]) => `${n} (${c.what})`)
            .join(', ')}, all`,
        );
      const done: string[] = [];
      for (const n of names) done.push(`${n}: ${await CACHES[n]!.drop(ctx)}`);
      return ok(done.join('; '));
    },
  },
];
