/**
 * PostgreSQL for tests: a fresh database per test file on 127.0.0.1:5432 (trust auth). In CI (CI=true) a
 * missing server fails loudly; elsewhere the caller skips with the printed reason.
 */
import pg from 'pg';

export const PG_BASE = process.env.VOXSWITCH_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function freshPgDatabase(): Promise<{ url: string; drop: () => Promise<void> } | { skip: string }> {
  const name = `vx_test_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (e) {
    await admin.end().catch(() => undefined);
    const reason = `PostgreSQL not reachable at ${PG_BASE}: ${(e as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${reason} (required in CI)`);
    return { skip: reason };
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
