/**
 * What admin SQL (`db`) and custom SQL templates may touch on a voxswitch SQLite database, checked on what SQLite
 * will execute (the compiled program from EXPLAIN and temporary triggers), never on the statement's text, so string
 * splitting (`'pass' || 'word_enc'`), quoting or comments change nothing:
 * - tb_api (the API rules and templates) is neither read nor written;
 * - tb_ledger and tb_reservations (credit held by live calls) are read-only; tb_users.credit, type, id,
 *   password_enc and forgot_answer_enc are not written, and no account is inserted (accounts come from newuser,
 *   types from the API's own paths);
 * - secret columns (password_enc, forgot_answer_enc) are never read, except straight into a result column (which
 *   the runner drops from the answer) or copied unchanged by an UPDATE of other columns of the same row;
 * - no virtual table and no schema change.
 * The guard is on when the database has tb_ledger (a voxswitch schema); other databases are left alone.
 */
import type Database from 'better-sqlite3';

export const SECRET_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  tb_users: ['password_enc', 'forgot_answer_enc'],
  tb_gateways: ['password_enc'],
};
/** Columns only the API's own paths change (setfield/newuser for types, the ledger for credit, changepwd). */
export const PROTECTED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  tb_users: ['type', 'credit', 'password_enc', 'forgot_answer_enc'],
};
const HIDDEN_TABLES = ['tb_api', 'kysely_migration', 'kysely_migration_lock'];
const READONLY_TABLES = ['tb_ledger', 'tb_reservations'];
const REFUSED_OPCODES = new Set([
  'VOpen',
  'VCreate',
  'VDestroy',
  'ParseSchema',
  'DropTable',
  'DropIndex',
  'DropTrigger',
  'Destroy',
  'CreateBtree',
  'SqlExec',
  'Clear',
  'JournalMode',
  'Vacuum',
]);

export class GuardRefusal extends Error {}

export interface Op {
  addr: number;
  opcode: string;
  p1: number;
  p2: number;
  p3: number;
}

export interface GuardSchema {
  /** root page → table name, for every table and index of the main database */
  tableOfRoot: Map<number, string>;
  /** root page of a table (not index) → its secret columns by column number */
  secretsOfRoot: Map<number, Map<number, string>>;
  /** root page of a table → its protected columns by column number */
  protectedOfRoot: Map<number, Map<number, string>>;
}

export interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  rootpage: number;
}

/** The query that lists the main database's tables and indexes (for buildGuardSchema). */
export const SCHEMA_QUERY = 'SELECT type, name, tbl_name, rootpage FROM main.sqlite_schema WHERE rootpage > 0';
/** The query that lists a table's columns (bound: the table name). */
export const COLUMNS_QUERY = 'SELECT cid, name FROM pragma_table_info(?)';

/** undefined when the database is not a voxswitch one (no tb_ledger). */
export function buildGuardSchema(
  rows: SchemaRow[],
  columnsOf: Record<string, Array<{ cid: number; name: string }>>,
): GuardSchema | undefined {
  if (!rows.some((r) => r.type === 'table' && r.name === 'tb_ledger')) return undefined;
  const tableOfRoot = new Map<number, string>();
  const secretsOfRoot = new Map<number, Map<number, string>>();
  const protectedOfRoot = new Map<number, Map<number, string>>();
  const pick = (table: string, names: readonly string[]) => {
    const m = new Map<number, string>();
    for (const c of columnsOf[table] ?? []) if (names.includes(c.name)) m.set(Number(c.cid), c.name);
    return m;
  };
  for (const r of rows) {
    tableOfRoot.set(Number(r.rootpage), r.tbl_name);
    if (r.type !== 'table') continue;
    const secrets = SECRET_COLUMNS[r.name];
    if (secrets) secretsOfRoot.set(Number(r.rootpage), pick(r.name, secrets));
    const prot = PROTECTED_COLUMNS[r.name];
    if (prot) protectedOfRoot.set(Number(r.rootpage), pick(r.name, prot));
  }
  return { tableOfRoot, secretsOfRoot, protectedOfRoot };
}

/** Reads the guard's view of the schema from a better-sqlite3 connection. */
export function loadGuardSchema(db: Database.Database): GuardSchema | undefined {
  const rows = db.prepare(SCHEMA_QUERY).all() as SchemaRow[];
  const columnsOf: Record<string, Array<{ cid: number; name: string }>> = {};
  for (const t of new Set([...Object.keys(SECRET_COLUMNS), ...Object.keys(PROTECTED_COLUMNS)]))
    columnsOf[t] = db.prepare(COLUMNS_QUERY).all(t) as Array<{ cid: number; name: string }>;
  return buildGuardSchema(rows, columnsOf);
}

/** Temporary triggers (this connection only) that refuse the writes the guard forbids. */
export function installGuardTriggers(db: Database.Database): void {
  const refuse = (name: string, when: string, table: string, msg: string) =>
    `CREATE TEMP TRIGGER IF NOT EXISTS ${name} ${when} ON main.${table} BEGIN SELECT RAISE(ABORT, '${msg}'); END`;
  const stmts = [
    refuse('g_users_insert', 'BEFORE INSERT', 'tb_users', 'accounts are created with newuser, not with SQL'),
    refuse(
      'g_users_protected',
      'BEFORE UPDATE OF id, type, credit, password_enc, forgot_answer_enc',
      'tb_users',
      'tb_users id, type, credit and secrets are changed by the API (setfield, addcredit, changepwd), not by SQL',
    ),
  ];
  for (const t of READONLY_TABLES) {
    for (const w of ['INSERT', 'UPDATE', 'DELETE'])
      stmts.push(refuse(`g_${t}_${w.toLowerCase()}`, `BEFORE ${w}`, t, `${t} is written only by the ledger`));
  }
  for (const w of ['INSERT', 'UPDATE', 'DELETE'])
    stmts.push(refuse(`g_api_${w.toLowerCase()}`, `BEFORE ${w}`, 'tb_api', 'tb_api is out of reach of SQL commands'));
  for (const s of stmts) db.exec(s);
}

/** Checks a prepared statement (better-sqlite3) against the guard; see inspectProgram. */
export function inspectStatement(
  db: Database.Database,
  schema: GuardSchema,
  stmt: Database.Statement,
  text: string,
  params: unknown[],
): number[] {
  const ops = db.prepare('EXPLAIN ' + text).all(...params) as Op[];
  return inspectProgram(schema, ops, stmt.reader ? stmt.columns() : undefined);
}

/**
 * Checks a compiled program (the rows of EXPLAIN) against the guard; returns the result column positions to drop
 * (secret columns answered directly). Without `origin` (result columns' source table and column) no secret may be
 * read at all. Throws GuardRefusal with the reason.
 */
export function inspectProgram(
  schema: GuardSchema,
  program: Op[],
  origin: Array<{ column: string | null; table: string | null }> | undefined,
): number[] {
  const ops = program.map((o) => ({
    addr: Number(o.addr),
    opcode: String(o.opcode),
    p1: Number(o.p1),
    p2: Number(o.p2),
    p3: Number(o.p3),
  }));
  // A cursor number can be reused for another table later in the program: keep every root it was opened on.
  const rootsOfCursor = new Map<number, Set<number>>();
  const open = (cursor: number, root: number) => {
    const set = rootsOfCursor.get(cursor) ?? new Set<number>();
    set.add(root);
    rootsOfCursor.set(cursor, set);
  };
  const on = (cursor: number, root: number) => rootsOfCursor.get(cursor)?.has(root) === true;
  for (const o of ops) {
    if (REFUSED_OPCODES.has(o.opcode)) throw new GuardRefusal(`statement not allowed (${o.opcode})`);
    if (o.opcode === 'OpenRead' || o.opcode === 'OpenWrite' || o.opcode === 'ReopenIdx') {
      if (o.p3 !== 0) continue; // temp database: nothing of ours lives there
      open(o.p1, o.p2);
      const table = schema.tableOfRoot.get(o.p2);
      if (o.p2 === 1 && o.opcode === 'OpenWrite') throw new GuardRefusal('the schema cannot be written');
      if (table && HIDDEN_TABLES.includes(table)) throw new GuardRefusal(`${table} is out of reach of SQL commands`);
      if (table && o.opcode === 'OpenWrite' && READONLY_TABLES.includes(table))
        throw new GuardRefusal(`${table} is written only by the ledger`);
    } else if (o.opcode === 'OpenDup') {
      for (const root of rootsOfCursor.get(o.p2) ?? []) open(o.p1, root);
    }
  }
  for (const ins of ops) {
    if (ins.opcode !== 'Insert') continue;
    for (const [root, prot] of schema.protectedOfRoot) {
      if (!on(ins.p1, root) || prot.size === 0) continue;
      const table = schema.tableOfRoot.get(root)!;
      const mk = [...ops].reverse().find((o) => o.opcode === 'MakeRecord' && o.p3 === ins.p2 && o.addr < ins.addr);
      for (const [cid, col] of prot) {
        const kept =
          mk !== undefined &&
          ops.some((o) => o.opcode === 'Column' && on(o.p1, root) && o.p2 === cid && o.p3 === mk.p1 + cid);
        if (!kept) throw new GuardRefusal(`${table}.${col} is changed only by the API, not by SQL commands`);
      }
    }
  }
  const drop = new Set<number>();
  for (const o of ops) {
    if (o.opcode !== 'Column' && o.opcode !== 'RowData') continue;
    for (const [root, secrets] of schema.secretsOfRoot) {
      if (!on(o.p1, root) || secrets.size === 0) continue;
      if (o.opcode === 'RowData') throw new GuardRefusal('whole rows of a table with secret columns cannot be copied');
      const col = secrets.get(o.p2);
      if (col === undefined) continue;
      const table = schema.tableOfRoot.get(root)!;
      const k = resultPosition(ops, o.p3);
      if (k !== undefined && origin && origin[k]?.column === col && origin[k]?.table === table) {
        drop.add(k);
        continue;
      }
      if (copiedUnchanged(ops, o, root, on)) continue;
      throw new GuardRefusal(`${table}.${col} is a secret column: SQL commands cannot read it`);
    }
  }
  return [...drop];
}

/** Position in a ResultRow of the register written by a Column opcode, if a ResultRow answers it. */
function resultPosition(ops: Op[], reg: number): number | undefined {
  for (const o of ops) if (o.opcode === 'ResultRow' && reg >= o.p1 && reg < o.p1 + o.p2) return reg - o.p1;
  return undefined;
}

/** An UPDATE rebuilding the row: the column is loaded into its own slot of the record written back to the table. */
function copiedUnchanged(ops: Op[], col: Op, root: number, on: (cursor: number, root: number) => boolean): boolean {
  for (const mk of ops) {
    if (mk.opcode !== 'MakeRecord' || mk.p1 + col.p2 !== col.p3 || col.p2 >= mk.p2) continue;
    const written = ops.some(
      (ins) => ins.opcode === 'Insert' && ins.p2 === mk.p3 && ins.addr > mk.addr && on(ins.p1, root),
    );
    if (written) return true;
  }
  return false;
}
