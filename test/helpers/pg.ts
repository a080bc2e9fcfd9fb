/**
 * PostgreSQL for tests: a fresh database per test file on 127.0.0.1:5432 (trust auth). In CI (CI=true) a
 * missing server fails loudly; elsewhere the caller skips with the printed reason.
 */
import pg from 'pg';
import { before, after } from 'node:test';
import { startTestServer, type TestServer } from './server.js';
import { IN_CI } from './tools.js';

export const PG_BASE = process.env.VOXSWITCH_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The skip reason for an unreachable server, printed; under CI=true it throws instead (PostgreSQL is required). */
function pgMissing(url: string, e: unknown): string {
  const reason = `PostgreSQL not reachable at ${url}: ${e instanceof Error ? e.message : String(e)}`;
  if (IN_CI) throw new Error(`${reason} (required when CI=true)`);
  console.log(`# skipping: ${reason}`);
  return reason;
}

/** A connected client on `url`, or the printed skip reason when the server is not reachable (throws in CI). */
export async function pgClient(url = PG_BASE): Promise<{ client: pg.Client } | { skip: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { client };
  } catch (e) {
    await client.end().catch(() => undefined);
    return { skip: pgMissing(url, e) };
  }
}

export async function freshPgDatabase(): Promise<{ url: string; drop: () => Promise<void> } | { skip: string }> {
  const name = `vx_test_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    // concurrent CREATE DATABASE calls (parallel test files) can find template1 busy (55006): retry briefly
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name}`);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== '55006' || attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } catch (e) {
    await admin.end().catch(() => undefined);
    return { skip: pgMissing(PG_BASE, e) };
  }
  await admin.end();
  const url = PG_BASE.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_BASE });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Registers before/after hooks that run a test server on a fresh PostgreSQL database (dropped afterwards).
 * `skip` holds the printed reason when PostgreSQL is not reachable outside CI.
 */
export function usePgTestServer(what: string, overrides: Record<string, string>): { t?: TestServer; skip?: string } {
  const holder: { t?: TestServer; skip?: string; drop?: () => Promise<void> } = {};
  before(async () => {
    const pg = await freshPgDatabase();
    if ('skip' in pg) {
      holder.skip = `PostgreSQL ${what} tests: ${pg.skip}`;
      return;
    }
    holder.drop = pg.drop;
    holder.t = await startTestServer({ dburl: pg.url, ...overrides });
  });
  after(async () => {
    await holder.t?.stop();
    await holder.drop?.();
  });
  return holder;
}
