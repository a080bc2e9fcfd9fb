/**
 * dbreset: database connections opened again without stopping the server. SQLite: the one connection is closed and
 * opened again while kysely holds it (no statement or transaction runs in between), its prepared statements
 * dropped. PostgreSQL: the pool's idle connections are closed (new ones open on demand); connections in use are
 * left to finish their work.
 */
import type { Storage } from './db.js';

export async function resetStorage(s: Storage): Promise<string> {
  if (s.sqlite) {
    const h = s.sqlite;
    const dropped = h.cachedStatements;
    await s.db.connection().execute(async () => h.reopen());
    return `SQLite connection to ${h.file} reopened (${dropped} prepared statements dropped)`;
  }
  const pool = s.pool!;
  const idle = pool.idleCount;
  const busy = pool.totalCount - idle;
  let closed = 0;
  for (let i = 0; i < idle; i++) {
    const c = await pool.connect();
    c.release(true);
    closed++;
  }
  return `PostgreSQL: ${closed} idle connections closed, ${busy} in use left to finish; new ones open on demand`;
}
