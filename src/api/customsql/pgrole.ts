/**
 * PostgreSQL: admin SQL (`db`) and custom SQL templates run as a restricted login role (voxswitch_sql), so the
 * database itself refuses what they may not do, whatever the statement's text: no access to tb_api or the
 * migration tables; tb_ledger read-only; tb_users without its secret columns, no INSERT, and no UPDATE of id, type
 * or credit; tb_gateways without password_enc. The role is (re)created and its grants refreshed with the server's
 * own connection; its password is derived from the server's URL, so servers sharing a database agree on it.
 * Databases without tb_ledger (not a voxswitch schema) are used as they are.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

export const SQL_ROLE = 'voxswitch_sql';

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';

/** Columns of a table except the listed ones, as a quoted list. */
async function columnsExcept(c: pg.Client, schema: string, table: string, except: string[]): Promise<string> {
  const r = await c.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY 1',
    [schema, table],
  );
  return r.rows
    .map((x) => x.column_name)
    .filter((n) => !except.includes(n))
    .map(ident)
    .join(', ');
}

/**
 * Makes sure the restricted role exists with the right grants; returns the URL to connect as it, or undefined when
 * the database is not a voxswitch one. Throws when the role cannot be set up (the caller refuses to run SQL then).
 */
export async function restrictedUrl(adminUrl: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const found = await c.query<{ s: string | null; db: string }>(
      "SELECT to_regclass('tb_ledger')::text AS s, current_database() AS db",
    );
    if (!found.rows[0]?.s) return undefined;
    const db = found.rows[0].db;
    const schema = (await c.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
    const password = createHash('sha256').update(`voxswitch-customsql\0${adminUrl}`).digest('hex').slice(0, 32);
    const R = ident(SQL_ROLE);
    const S = ident(schema);
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [SQL_ROLE]); // grants race between servers
    const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [SQL_ROLE]);
    const opts = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION PASSWORD '${password}'`;
    await c.query(`${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${R} ${opts}`);
    const users = await columnsExcept(c, schema, 'tb_users', ['password_enc', 'forgot_answer_enc']);
    const usersWritable = await columnsExcept(c, schema, 'tb_users', [
      'id',
      'type',
      'credit',
      'password_enc',
      'forgot_answer_enc',
    ]);
    const gateways = await columnsExcept(c, schema, 'tb_gateways', ['password_enc']);
    for (const q of [
      `GRANT CONNECT ON DATABASE ${ident(db)} TO ${R}`,
      `GRANT USAGE ON SCHEMA ${S} TO ${R}`,
      `REVOKE ALL ON ALL TABLES IN SCHEMA ${S} FROM ${R}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${S} TO ${R}`,
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${S} TO ${R}`,
      `REVOKE ALL ON tb_api, kysely_migration, kysely_migration_lock FROM ${R}`,
      `REVOKE INSERT, UPDATE, DELETE ON tb_ledger, tb_reservations FROM ${R}`,
      `REVOKE ALL ON tb_users FROM ${R}`,
      `GRANT SELECT (${users}), UPDATE (${usersWritable}), DELETE ON tb_users TO ${R}`,
      `REVOKE ALL ON tb_gateways FROM ${R}`,
      `GRANT SELECT (${gateways}), UPDATE (${gateways}), DELETE ON tb_gateways TO ${R}`,
    ])
      await c.query(q);
    await c.query('COMMIT');
    const u = new URL(adminUrl);
    u.username = SQL_ROLE;
    u.password = password;
    return u.toString();
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    await c.end().catch(() => undefined);
  }
}
