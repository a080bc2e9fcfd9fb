/**
 * The maintenance jobs (hourlymaint, dailymaint, weeklymaint, monthlymaint): run by hand through the API or on
 * their schedule (UTC: hourly at :05, daily at 00:10, weekly on Monday 01:10, monthly on the 1st at 02:10; off with
 * usemaint=false). A run holds the job's lease in tb_jobs (lock.ts), so it never runs twice at once across
 * processes and nodes; a scheduled run is skipped when another process already ran the job in this period. Each
 * run is recorded in tb_jobruns (start, end, node, what each step did, or the error) and logged.
 */
import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../../storage/schema.js';
import type { Storage } from '../../storage/db.js';
import type { Ledger } from '../../domain/billing/ledger.js';
import { DomainError } from '../../domain/errors.js';
import type { DailyReport } from '../reports/daily.js';
import { JobLock } from './lock.js';
import { JOBS, STEPS, type JobName, type MaintOptions, type StepSummary } from './steps.js';

export { JOBS, type JobName } from './steps.js';

const LEASE_MS = 10 * 60_000;
const HOUR = 3_600_000;

export interface MaintenanceDeps {
  storage: Storage;
  ledger: Ledger;
  dataDir: string;
  log: Logger;
  node: string;
  options: () => MaintOptions & { usemaint: boolean };
  onReport?: (r: DailyReport, files: { text: string; html: string }) => void;
  /** Test hook: runs inside each step's transactions before they commit (a throw rolls that transaction back). */
  checkpoint?: (job: RunName, label: string, trx: Transaction<Database>) => Promise<void> | void;
  now?: () => number;
}

/** The scheduled jobs, and the one-step checks run by hand (each has a lease and run records of its own). */
export type RunName = JobName | 'checkcredits' | 'checkpins';

export interface JobRun {
  job: RunName;
  node: string;
  startedAt: number;
  endedAt: number;
  steps: Record<string, StepSummary>;
}

/** The start of the period a scheduled run belongs to, and the next time it is due (UTC). */
export function schedule(job: JobName, now: number): { period: number; next: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const at = (t: number, offset: number) => ({ period: t, next: t + offset });
  const pick = (cur: number, step: (t: number) => number) => (now < cur ? { period: step(cur), next: cur } : null);
  if (job === 'hourlymaint') {
    const h = Math.floor(now / HOUR) * HOUR + 5 * 60_000;
    return pick(h, (t) => t - HOUR) ?? at(h, HOUR);
  }
  if (job === 'dailymaint') {
    const t = Date.UTC(y, m, d.getUTCDate(), 0, 10);
    return pick(t, (x) => x - 24 * HOUR) ?? at(t, 24 * HOUR);
  }
  if (job === 'weeklymaint') {
    const monday = Date.UTC(y, m, d.getUTCDate() - ((d.getUTCDay() + 6) % 7), 1, 10);
    return pick(monday, (x) => x - 7 * 24 * HOUR) ?? at(monday, 7 * 24 * HOUR);
  }
  const first = Date.UTC(y, m, 1, 2, 10);
  if (now < first) return { period: Date.UTC(y, m - 1, 1, 2, 10), next: first };
  return { period: first, next: Date.UTC(y, m + 1, 1, 2, 10) };
}

export class Maintenance {
  private readonly lock: JobLock;
  private timers = new Map<JobName, NodeJS.Timeout>();
  private readonly now: () => number;

  constructor(private readonly d: MaintenanceDeps) {
    this.now = d.now ?? Date.now;
    this.lock = new JobLock(d.storage.db, d.node, this.now);
  }

  get jobLock(): JobLock {
    return this.lock;
  }

  /** Arms each job's timer (when usemaint is on); answers when each runs next. */
  start(): Record<JobName, string> {
    const next = {} as Record<JobName, string>;
    if (!this.d.options().usemaint) return next;
    for (const job of Object.keys(JOBS) as JobName[]) next[job] = new Date(this.arm(job)).toISOString();
    return next;
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** maintreset: the timers stopped and armed again from the current options and clock. */
  reset(): Record<JobName, string> {
    this.stop();
    return this.start();
  }

  private arm(job: JobName): number {
    const { next } = schedule(job, this.now());
    // setTimeout holds at most 2^31-1 ms (24.8 days): a monthly timer re-arms itself on the way
    const wait = Math.min(Math.max(next - this.now(), 1000), 2 ** 31 - 1);
    const t = setTimeout(() => {
      this.timers.delete(job);
      if (this.now() + 1000 < next) {
        this.arm(job);
        return;
      }
      void this.scheduled(job).finally(() => this.d.options().usemaint && !this.timers.has(job) && this.arm(job));
    }, wait);
    t.unref();
    this.timers.set(job, t);
    return next;
  }

  private async scheduled(job: JobName): Promise<void> {
    try {
      const { period } = schedule(job, this.now());
      const done = await this.d.storage.db
        .selectFrom('tb_jobruns')
        .select('node')
        .where('job', '=', job)
        .where('started_at', '>=', period)
        .where('error', '=', '')
        .where('ended_at', 'is not', null)
        .executeTakeFirst();
      if (done) return this.d.log.debug({ job, node: done.node }, 'maintenance job already ran in this period');
      await this.run(job);
    } catch (e) {
      this.d.log.warn({ job, err: (e as Error).message }, 'scheduled maintenance job not run');
    }
  }

  /** Runs a job now (all its steps, in order); a job held elsewhere or a failed step answers a DomainError. */
  async run(job: JobName): Promise<JobRun> {
    return this.runSteps(job, JOBS[job]);
  }

  /** Runs named steps under a job's lease (checkcredits / checkpins run one step of dailymaint). */
  async runSteps(job: RunName, steps: string[]): Promise<JobRun> {
    const claim = await this.lock.claim(job, LEASE_MS);
    if (!claim.ok)
      throw new DomainError(
        `${job} is already running on ${claim.node} (since ${new Date(claim.since).toISOString()})`,
        'conflict',
      );
    const startedAt = this.now();
    const db = this.d.storage.db;
    const out: Record<string, StepSummary> = {};
    let runId: number | undefined;
    try {
      const row = await db
        .insertInto('tb_jobruns')
        .values({ job, node: this.d.node, started_at: startedAt, ended_at: null, result: '', error: '' })
        .returning('id')
        .executeTakeFirstOrThrow();
      runId = Number(row.id);
      this.d.log.info({ job, node: this.d.node, steps }, 'maintenance job started');
      for (const name of steps) {
        const ctx = {
          storage: this.d.storage,
          ledger: this.d.ledger,
          dataDir: this.d.dataDir,
          log: this.d.log,
          options: this.d.options(),
          now: this.now(),
          checkpoint: async (label: string, trx: Transaction<Database>) => this.d.checkpoint?.(job, label, trx),
          onReport: (r: DailyReport, f: { text: string; html: string }) => this.d.onReport?.(r, f),
        };
        try {
          out[name] = await STEPS[name]!(ctx);
        } catch (e) {
          throw new StepFailure(name, e);
        }
        await this.lock.renew(job, LEASE_MS);
      }
      const endedAt = this.now();
      await db
        .updateTable('tb_jobruns')
        .set({ ended_at: endedAt, result: JSON.stringify(out) })
        .where('id', '=', runId)
        .execute();
      this.d.log.info({ job, node: this.d.node, ms: endedAt - startedAt, result: out }, 'maintenance job done');
      return { job, node: this.d.node, startedAt, endedAt, steps: out };
    } catch (e) {
      const step = e instanceof StepFailure ? e.step : '';
      const why = e instanceof StepFailure ? e.reason : (e as Error).message;
      const error = step ? `step ${step} failed: ${why}` : why;
      if (runId !== undefined)
        await db
          .updateTable('tb_jobruns')
          .set({ ended_at: this.now(), result: JSON.stringify(out), error })
          .where('id', '=', runId)
          .execute()
          .catch(() => undefined);
      this.d.log.error({ job, node: this.d.node, error, done: Object.keys(out) }, 'maintenance job failed');
      const done = Object.keys(out);
      throw new DomainError(
        `${job} failed: ${error} (rolled back; done before it: ${done.join(', ') || 'nothing'}; run it again)`,
        'unavailable',
      );
    } finally {
      await this.lock.release(job).catch(() => undefined);
    }
  }

  /** The last runs of every job (newest first). */
  async history(limit = 20): Promise<Array<Database['tb_jobruns'] extends infer T ? T : never>> {
    return (await this.d.storage.db
      .selectFrom('tb_jobruns')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(limit)
      .execute()) as never;
  }
}

class StepFailure extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(String((cause as Error)?.message ?? cause));
  }
  get reason(): string {
    return this.message;
  }
}
