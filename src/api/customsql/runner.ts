/**
 * Executes operator-defined custom SQL API commands with a hard time limit.
 *
 * - SQLite: queries run in a long-lived worker process (child.js) one at a time; a query that
 *   exceeds its time limit is stopped by SIGKILLing the worker, which is respawned on next use.
 * - PostgreSQL: a dedicated pg.Client per runner; `statement_timeout` is set to the query's time
 *   limit, with a client-side backstop that drops the connection if the server does not answer.
 *
 * SELECTs return at most `maxRows` rows (`truncated` tells whether more existed).  INSERT/UPDATE/
 * DELETE templates without a leading `*` are queued and run in the background; `*` ones run
 * synchronously and report failures as CustomSqlError.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  bindValues,
  compileTemplate,
  CustomSqlError,
  type CompiledTemplate,
  type CustomSqlContext,
  type CustomSqlDialect,
} from './template.js';
import type { ChildQuery, ChildReply } from './protocol.js';
import { errorMessage, timeLimitError, type Backend, type CustomSqlResult, type Job } from './backend.js';
import { PgBackend } from './pgbackend.js';

export { CustomSqlError } from './template.js';
export type { CustomSqlResult } from './backend.js';

export interface CustomSqlRunnerOptions {
  dialect: CustomSqlDialect;
  /** SQLite file path or PostgreSQL connection URL. */
  location: string;
  /** Maximum rows answered by a SELECT (default 100). */
  maxRows?: number;
}

/** How long the SQLite worker may take to start and open the database. */
const SPAWN_TIMEOUT_MS = 15_000;

export class CustomSqlRunner {
  readonly dialect: CustomSqlDialect;
  readonly maxRows: number;
  private readonly backend: Backend;
  private readonly queue: Job[] = [];
  private busy = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: CustomSqlRunnerOptions) {
    if (opts.dialect !== 'sqlite' && opts.dialect !== 'pg') {
      throw new CustomSqlError(`unsupported custom SQL dialect: ${String(opts.dialect)}`);
    }
    if (typeof opts.location !== 'string' || opts.location === '') {
      throw new CustomSqlError('custom SQL runner needs a database location');
    }
    const maxRows = opts.maxRows ?? 100;
    if (!Number.isInteger(maxRows) || maxRows < 0) throw new CustomSqlError('maxRows must be a non-negative integer');
    this.dialect = opts.dialect;
    this.maxRows = maxRows;
    this.backend =
      opts.dialect === 'sqlite' ? new SqliteBackend(opts.location, maxRows) : new PgBackend(opts.location, maxRows);
  }

  /**
   * Run a custom SQL template.  Template/parameter errors are thrown (rejected) before anything
   * is executed.  Resolves `{ queued: true }` immediately for non-`*` INSERT/UPDATE/DELETE.
   */
  run(sql: string, ctx: CustomSqlContext, timeoutMs: number): Promise<CustomSqlResult | { queued: true }> {
    try {
      if (this.closed) throw new CustomSqlError('custom SQL runner is closed');
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
        throw new CustomSqlError('custom SQL time limit must be a positive number of ms');
      const compiled = compileTemplate(sql, this.dialect);
      const params = bindValues(compiled.slots, ctx);
      const timeout = Math.max(1, Math.ceil(timeoutMs));
      const done = this.enqueue(compiled, params, timeout);
      if (compiled.kind !== 'select' && !compiled.sync) {
        done.catch((err: unknown) => {
          // Never log bound values: only the statement kind and the database's message.
          console.error(`[customsql] background ${compiled.kind.toUpperCase()} failed: ${errorMessage(err)}`);
        });
        return Promise.resolve({ queued: true as const });
      }
      return done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Waits for queued statements to finish, then stops the worker / database connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.busy || this.queue.length > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.backend.close();
  }

  private enqueue(compiled: CompiledTemplate, params: unknown[], timeoutMs: number): Promise<CustomSqlResult> {
    return new Promise<CustomSqlResult>((resolve, reject) => {
      this.queue.push({ compiled, params, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    this.busy = true;
    let settled: Promise<CustomSqlResult>;
    try {
      settled = this.backend.execute(job);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled
      .then(
        (r) => job.resolve(r),
        (e: unknown) => job.reject(e instanceof CustomSqlError ? e : new CustomSqlError(errorMessage(e), { cause: e })),
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite: worker process
// ---------------------------------------------------------------------------------------------

const CHILD_PATH = fileURLToPath(new URL('./child.js', import.meta.url));

interface Pending {
  id: number;
  resolve(r: CustomSqlResult): void;
  reject(e: unknown): void;
  timer?: NodeJS.Timeout;
}

class Worker {
  readonly proc: ChildProcess;
  ready: Promise<void>;
  dead = false;
  pending: Pending | undefined;
  private readyResolve!: () => void;
  private readyReject!: (e: unknown) => void;
  private isReady = false;

  constructor(
    location: string,
    private readonly onDead: (w: Worker) => void,
  ) {
    this.ready = new Promise<void>((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => {}); // observed by execute(); avoid unhandled rejections
    this.proc = fork(CHILD_PATH, [location], {
      execArgv: [],
      serialization: 'advanced', // keeps Buffers (BLOBs) and bigints intact
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // Never keep the parent alive just because the worker exists; pending timers do that.
    this.proc.unref();
    (this.proc.channel as { unref?: () => void } | undefined)?.unref?.();

    const startTimer = setTimeout(() => {
      this.fail(new CustomSqlError('custom SQL worker did not start in time'));
    }, SPAWN_TIMEOUT_MS);
    this.ready.then(
      () => clearTimeout(startTimer),
      () => clearTimeout(startTimer),
    );

    this.proc.on('message', (raw: unknown) => this.onMessage(raw as ChildReply));
    this.proc.on('error', (err) =>
      this.fail(new CustomSqlError(`custom SQL worker error: ${err.message}`, { cause: err })),
    );
    this.proc.on('exit', (code, signal) => {
      this.fail(new CustomSqlError(`custom SQL worker exited unexpectedly (${signal ?? `code ${code}`})`));
    });
  }

  private onMessage(msg: ChildReply): void {
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'ready':
        this.isReady = true;
        this.readyResolve();
        return;
      case 'fatal':
        this.fail(new CustomSqlError(msg.message));
        return;
      case 'result':
      case 'changes':
      case 'error': {
        const p = this.pending;
        if (!p || p.id !== msg.id) return;
        this.pending = undefined;
        if (p.timer) clearTimeout(p.timer);
        if (msg.type === 'error') p.reject(new CustomSqlError(msg.message));
        else if (msg.type === 'result') p.resolve({ columns: msg.columns, rows: msg.rows, truncated: msg.truncated });
        else p.resolve({ columns: [], rows: [], changes: msg.changes, truncated: false });
        return;
      }
    }
  }

  /** Marks the worker dead (killing it if needed) and fails whatever was waiting on it. */
  fail(err: CustomSqlError): void {
    if (!this.dead) {
      this.dead = true;
      this.kill();
      this.onDead(this);
    }
    if (!this.isReady) this.readyReject(err);
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  query(msg: ChildQuery, timeoutMs: number): Promise<CustomSqlResult> {
    return new Promise<CustomSqlResult>((resolve, reject) => {
      if (this.dead) {
        reject(new CustomSqlError('custom SQL worker is not running'));
        return;
      }
      const pending: Pending = { id: msg.id, resolve, reject };
      this.pending = pending;
      pending.timer = setTimeout(() => {
        if (this.pending === pending) this.fail(timeLimitError(timeoutMs));
      }, timeoutMs);
      try {
        this.proc.send(msg, undefined, undefined, (err) => {
          if (err && this.pending === pending) {
            this.fail(new CustomSqlError(`custom SQL worker unreachable: ${err.message}`, { cause: err }));
          }
        });
      } catch (err) {
        this.fail(new CustomSqlError(`custom SQL worker unreachable: ${errorMessage(err)}`, { cause: err }));
      }
    });
  }

  /** Graceful stop: disconnect IPC (the child closes its DB and exits); SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.dead) return;
    this.dead = true;
    await new Promise<void>((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      const t = setTimeout(() => {
        this.kill();
        resolve();
      }, 2_000);
      this.proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      try {
        this.proc.disconnect();
      } catch {
        this.kill();
      }
    });
  }
}

class SqliteBackend implements Backend {
  private worker: Worker | undefined;
  private nextId = 1;

  constructor(
    private readonly location: string,
    private readonly maxRows: number,
  ) {}

  private getWorker(): Worker {
    if (!this.worker || this.worker.dead) {
      this.worker = new Worker(this.location, (w) => {
        if (this.worker === w) this.worker = undefined; // respawn lazily on next use
      });
    }
    return this.worker;
  }

  async execute(job: Job): Promise<CustomSqlResult> {
    const worker = this.getWorker();
    await worker.ready;
    return worker.query(
      {
        type: 'query',
        id: this.nextId++,
        text: job.compiled.text,
        params: job.params,
        kind: job.compiled.kind,
        maxRows: this.maxRows,
      },
      job.timeoutMs,
    );
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.stop();
  }
}
