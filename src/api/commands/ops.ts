/**
 * Backups and maintenance: backup, hourlymaint/dailymaint/weeklymaint/monthlymaint, maintreset, dailyreport,
 * checkcredits, checkpins, finetune, syncmedia. The work is in src/ops; these map it onto answers.
 */
import { ok } from '../types.js';
import type { ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import { ApiError } from '../types.js';
import type { JobRun, JobName } from '../../ops/maintenance/scheduler.js';
import { buildDailyReport, lowCreditAccounts, reportHtml, reportText, saveReport } from '../../ops/reports/daily.js';
import { finetune } from '../../ops/finetune.js';

function runAnswer(r: JobRun): ApiResult {
  const rows = Object.entries(r.steps).map(([step, res]) => ({
    step,
    result: Object.entries(res)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  }));
  const steps = rows.map((x) => `${x.step}: ${x.result}`).join('; ');
  const text = `${r.job} done on ${r.node} in ${r.endedAt - r.startedAt} ms: ${steps}`;
  return ok(text, {
    fields: { job: r.job, node: r.node, ms: r.endedAt - r.startedAt },
    columns: ['step', 'result'],
    rows,
  });
}

const job = (name: JobName, description: string): CommandDef => ({
  name,
  params: [],
  level: 6,
  description,
  run: async (ctx) => runAnswer(await ctx.services.ops.maintenance.run(name)),
});

export const opsCommands: CommandDef[] = [
  {
    name: 'backup',
    params: [],
    level: 6,
    description: 'online database backup into <datadir>/backups (and to backuptarget, the second server)',
    run: async (ctx) => {
      const b = await ctx.services.ops.backups.run();
      const target = b.target ? (b.target.ok ? `; copied to ${b.target.file}` : `; ${b.target.error}`) : '';
      const text =
        `backup ${b.name} written (${b.bytes} bytes, ${b.ms} ms, ${b.counts.users} users, ${b.counts.ledger} ` +
        `ledger entries, ${b.counts.cdrs} CDRs)${target}`;
      const fields = { file: b.file, bytes: b.bytes, ms: b.ms, removed: b.removed.join(',') };
      // the local backup is there; a second server that could not take it is still a failure to report
      if (b.target && !b.target.ok) throw new ApiError(text);
      return ok(text, { fields });
    },
  },
  job('hourlymaint', 'run hourly maintenance tasks (expired number locks and bans)'),
  job('dailymaint', 'run daily maintenance tasks (PINs, CDR retention, reconciliation, housekeeping, report)'),
  job('weeklymaint', 'run weekly maintenance tasks (integrity check / VACUUM, housekeeping)'),
  job('monthlymaint', 'run monthly maintenance tasks (old run records, reports, dead PINs, delivered IMs)'),
  {
    name: 'maintreset',
    params: [],
    level: 6,
    description: 'restart the maintenance timers',
    run: (ctx) => {
      const next = ctx.services.ops.maintenance.reset();
      const list = Object.entries(next);
      if (!list.length) return ok('maintenance timers stopped: usemaint is off (the jobs still run by hand)');
      return ok(`maintenance timers restarted: ${list.map(([j, t]) => `${j} next at ${t}`).join(', ')}`, {
        fields: next,
      });
    },
  },
  {
    name: 'dailyreport',
    params: ['date'],
    level: 6,
    description: 'build the daily report of a day (date=YYYY-MM-DD, default yesterday, UTC) into <datadir>/reports',
    run: async (ctx, p) => {
      const s = ctx.services;
      const r = await buildDailyReport(s.storage.db, p.date ?? '', s.config.options.lowcredit);
      const files = saveReport(s.config.dataDir, r);
      s.log.info({ day: r.day, calls: r.calls, file: files.text }, 'daily report written');
      s.ops.report(r, files);
      const html = ctx.req.format === 'html';
      return ok(html ? reportHtml(r) : reportText(r), {
        fields: { day: r.day, calls: r.calls, answered: r.answered, minutes: r.minutes, asr: r.asr, acd: r.acd },
      });
    },
  },
  {
    name: 'checkcredits',
    params: [],
    level: 6,
    description: 'reconcile every balance with the ledger and list low-credit accounts (under lowcredit)',
    run: async (ctx) => {
      const s = ctx.services;
      const r = await s.ops.maintenance.runSteps('checkcredits', ['reconcile']);
      const rec = r.steps.reconcile!;
      const low = await lowCreditAccounts(s.storage.db, s.config.options.lowcredit);
      const text =
        `${rec.mismatches} balances differ from their ledger${rec.mismatches ? ` (accounts ${rec.first}…)` : ''}; ` +
        `${low.length} accounts under ${s.config.options.lowcredit}`;
      return ok(text, {
        fields: { mismatches: rec.mismatches!, lowcredit: low.length },
        columns: ['username', 'credit', 'currency'],
        rows: low.map((u) => ({ ...u, credit: u.credit.toFixed(4) })),
      });
    },
  },
  {
    name: 'checkpins',
    params: [],
    level: 6,
    description: 'recheck PIN codes: expired unused ones, used ones without their ledger entry',
    run: async (ctx) => {
      const r = await ctx.services.ops.maintenance.runSteps('checkpins', ['pins']);
      const x = r.steps.pins!;
      return ok(
        `${x.used} used PINs, ${x.used_without_ledger} of them without their ledger entry; ${x.expired_unused} ` +
          'expired unused PINs (refused when redeemed)',
        { fields: x },
      );
    },
  },
  {
    name: 'finetune',
    params: [],
    level: 6,
    description: 'tune the database cache and planner statistics',
    run: async (ctx) => {
      const r = await finetune(ctx.services.storage, () => ctx.services.users.clearCache());
      return ok(
        Object.entries(r)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; '),
        { fields: r },
      );
    },
  },
  {
    name: 'syncmedia',
    params: [],
    level: 6,
    description: 'synchronise media files',
    run: () => {
      throw new ApiError(
        'syncmedia has nothing to do: voxswitch keeps no media files (no voicemail, recordings or prompts); the ' +
          'RTP relay only forwards media',
      );
    },
  },
];
