/**
 * PostgreSQL backend of the custom SQL runner: a dedicated pg.Client, connected as the restricted role (pgrole.ts)
 * on a voxswitch database; `statement_timeout` is the query's time limit, with a client-side backstop that drops
 * the connection if the server does not answer.
 */
import pg from 'pg';
import { CustomSqlError } from './template.js';
import { errorMessage, timeLimitError, type Backend, type CustomSqlResult, type Job } from './backend.js';
import { restrictedUrl, SQL_ROLE } from './pgrole.js';

/** Extra time given to PostgreSQL to report statement_timeout before the connection is dropped. */
const PG_BACKSTOP_MS = 2_000;
const PG_CONNECT_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// PostgreSQL: dedicated client
// ---------------------------------------------------------------------------------------------

export class PgBackend implements Backend {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private currentTimeout: number | undefined;

  constructor(
    private readonly location: string,
    private readonly maxRows: number,
  ) {}

  /** Where statements run: the restricted role's URL on a voxswitch database (pgrole.ts), else the given URL. */
  private target: Promise<string> | undefined;

  private targetUrl(): Promise<string> {
    this.target ??= restrictedUrl(this.location).then(
      (url) => url ?? this.location,
      (err: unknown) => {
        this.target = undefined; // try again next time
        throw new CustomSqlError(`cannot set up the restricted SQL role ${SQL_ROLE}: ${errorMessage(err)}`, {
          cause: err,
        });
      },
    );
    return this.target;
  }

  private async getClient(): Promise<pg.Client> {
    if (this.client) return this.client;
    const url = await this.targetUrl();
    if (this.client) return this.client;
    if (!this.connecting) {
      const client = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
        application_name: 'voxswitch-customsql',
      });
      client.on('error', (err) => {
        // A dropped connection must never crash the process; reconnect on next use.
        console.error(`[customsql] PostgreSQL connection error: ${err.message}`);
        this.discard(client);
      });
      this.connecting = client.connect().then(
        () => {
          this.connecting = undefined;
          this.client = client;
          this.currentTimeout = undefined;
          return client;
        },
        (err: unknown) => {
          this.connecting = undefined;
          client.end().catch(() => {});
          throw new CustomSqlError(`cannot connect to PostgreSQL: ${errorMessage(err)}`, { cause: err });
        },
      );
    }
    return this.connecting;
  }

  private discard(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.currentTimeout = undefined;
    }
    client.end().catch(() => {});
  }

  /** Runs a query with a client-side backstop that drops the connection if the server hangs. */
  private async timed<R extends pg.QueryResultRow>(
    client: pg.Client,
    config: pg.QueryConfig,
    limitMs: number,
    timeoutMs: number,
  ): Promise<pg.QueryResult<R>> {
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.discard(client);
        reject(timeLimitError(timeoutMs));
      }, limitMs);
    });
    try {
      return await Promise.race([client.query<R>(config), backstop]);
    } finally {
      clearTimeout(timer);
    }
  }

  async execute(job: Job): Promise<CustomSqlResult> {
    const client = await this.getClient();
    const { compiled, params, timeoutMs } = job;
    try {
      if (this.currentTimeout !== timeoutMs) {
        await this.timed(
          client,
          { text: `SET statement_timeout = ${Math.floor(timeoutMs)}` },
          PG_BACKSTOP_MS + 3_000,
          timeoutMs,
        );
        this.currentTimeout = timeoutMs;
      }
      const backstop = timeoutMs + PG_BACKSTOP_MS;
      if (compiled.kind === 'select') {
        const text = `SELECT * FROM (\n${compiled.text}\n) AS q LIMIT ${this.maxRows + 1}`;
        // queryMode 'extended' forces the extended protocol, which never runs more than one statement.
        const res = await this.timed<Record<string, unknown>>(
          client,
          { text, values: params, queryMode: 'extended' } as pg.QueryConfig,
          backstop,
          timeoutMs,
        );
        const truncated = res.rows.length > this.maxRows;
        return {
          columns: res.fields.map((f) => f.name),
          rows: truncated ? res.rows.slice(0, this.maxRows) : res.rows,
          truncated,
        };
      }
      const res = await this.timed(
        client,
        { text: compiled.text, values: params, queryMode: 'extended' } as pg.QueryConfig,
        backstop,
        timeoutMs,
      );
      if (res.command && res.command.toLowerCase() !== compiled.kind) {
        throw new CustomSqlError(`custom SQL ran ${res.command} instead of ${compiled.kind.toUpperCase()}`);
      }
      if (res.fields && res.fields.length > 0) {
        throw new CustomSqlError(`custom SQL ${compiled.kind.toUpperCase()} must not return rows`);
      }
      return { columns: [], rows: [], changes: res.rowCount ?? 0, truncated: false };
    } catch (err) {
      if (err instanceof CustomSqlError) throw err;
      const code = (err as { code?: string } | null)?.code;
      if (code === '57014') throw timeLimitError(timeoutMs); // query_canceled (statement_timeout)
      if (!code) this.discard(client); // connection-level failure: reconnect next time
      throw new CustomSqlError(errorMessage(err), { cause: err });
    }
  }

  async close(): Promise<void> {
    const pending = this.connecting;
    if (pending) await pending.catch(() => undefined);
    const c = this.client;
    this.client = undefined;
    if (c) await c.end().catch(() => {});
  }
}
