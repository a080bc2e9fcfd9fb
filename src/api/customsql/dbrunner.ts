/**
 * The `db` command's SQL runner: one per server, built by the composition root (src/server.ts) and closed in
 * its shutdown path. The worker process (SQLite) or connection (PostgreSQL) behind it starts with the first
 * statement, is replaced when the row limit (option dbmaxrows) changes, and is closed after a while unused.
 */
import { CustomSqlRunner, type CustomSqlResult } from './runner.js';
import type { CustomSqlContext, CustomSqlDialect } from './template.js';

export interface DbRunnerOptions {
  dialect: CustomSqlDialect;
  /** SQLite file path or PostgreSQL connection URL. */
  location: string;
  /** The row limit now (read at every statement, so a reload applies). */
  maxRows: () => number;
  /** Close the worker after this long without use (default one minute). */
  idleMs?: number;
}

export class DbRunner {
  private runner?: CustomSqlRunner;
  private idle?: NodeJS.Timeout;

  constructor(private readonly o: DbRunnerOptions) {}

  run(sql: string, ctx: CustomSqlContext, timeoutMs: number): Promise<CustomSqlResult | { queued: true }> {
    const maxRows = this.o.maxRows();
    if (this.runner && this.runner.maxRows !== maxRows) {
      void this.runner.close().catch(() => undefined);
      this.runner = undefined;
    }
    this.runner ??= new CustomSqlRunner({ dialect: this.o.dialect, location: this.o.location, maxRows });
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.close().catch(() => undefined), this.o.idleMs ?? 60_000);
    this.idle.unref();
    return this.runner.run(sql, ctx, timeoutMs);
  }

  /** Stops the worker process / connection (idempotent; the next statement starts a new one). */
  async close(): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const r = this.runner;
    this.runner = undefined;
    if (r) await r.close();
  }
}
