/**
 * The check of a stored custom SQL template (a tb_api row), made when the rules are loaded: the template must
 * compile (one plain SELECT/INSERT/UPDATE/DELETE) and, on SQLite, its compiled program must pass the guard in
 * strict mode (no secret column read at all, tb_api untouched, tb_ledger read-only). On PostgreSQL the run-time
 * guard is the restricted role the runner connects as (pgrole.ts).
 */
import { CompiledQuery, PostgresAdapter, type Kysely } from 'kysely';
import { compileTemplate, CustomSqlError } from './template.js';
import { buildGuardSchema, COLUMNS_QUERY, GuardRefusal, inspectProgram, SCHEMA_QUERY } from './guard.js';
import { PROTECTED_COLUMNS, SECRET_COLUMNS } from './guard.js';
import type { Op, SchemaRow } from './guard.js';

async function rows<R>(db: Kysely<any>, text: string, params: unknown[] = []): Promise<R[]> {
  return (await db.executeQuery<R>(CompiledQuery.raw(text, params))).rows;
}

/** Throws CustomSqlError naming why the template is refused. */
export async function checkStoredTemplate(db: Kysely<any>, sql: string): Promise<void> {
  const dialect = db.getExecutor().adapter instanceof PostgresAdapter ? 'pg' : 'sqlite';
  const compiled = compileTemplate(sql, dialect);
  if (dialect !== 'sqlite') return;
  const columnsOf: Record<string, Array<{ cid: number; name: string }>> = {};
  for (const t of new Set([...Object.keys(SECRET_COLUMNS), ...Object.keys(PROTECTED_COLUMNS)]))
    columnsOf[t] = await rows(db, COLUMNS_QUERY, [t]);
  const schema = buildGuardSchema(await rows<SchemaRow>(db, SCHEMA_QUERY), columnsOf);
  if (!schema) return;
  let program: Op[];
  try {
    program = await rows<Op>(
      db,
      'EXPLAIN ' + compiled.text,
      compiled.slots.map(() => null),
    );
  } catch (e) {
    throw new CustomSqlError((e as Error).message);
  }
  try {
    inspectProgram(schema, program, undefined);
  } catch (e) {
    if (e instanceof GuardRefusal) throw new CustomSqlError(e.message);
    throw e;
  }
}
