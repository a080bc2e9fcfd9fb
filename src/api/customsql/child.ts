/**
 * SQLite worker process for CustomSqlRunner.
 *
 * Started with child_process.fork(child.js, [databasePath]).  It opens the database once, answers
 * one query at a time over IPC, and is SIGKILLed by the parent when a query exceeds its time limit
 * (better-sqlite3 is synchronous, so killing the process is the only way to really stop a query).
 */
import Database from 'better-sqlite3';
import type { ChildQuery, ChildReply } from './protocol.js';
import { installGuardTriggers, inspectStatement, loadGuardSchema } from './guard.js';

function send(msg: ChildReply): void {
  if (process.connected && process.send) {
    process.send(msg, undefined, undefined, () => {
      /* parent gone: ignore */
    });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function main(): void {
  if (!process.send) {
    console.error('customsql child must be started with child_process.fork');
    process.exit(2);
  }
  const file = process.argv[2];
  if (!file) {
    send({ type: 'fatal', message: 'custom SQL worker started without a database path' });
    process.exit(2);
  }

  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 5000 });
    db.pragma('busy_timeout = 5000');
    if (loadGuardSchema(db)) installGuardTriggers(db);
  } catch (err) {
    send({ type: 'fatal', message: `cannot open SQLite database: ${errorMessage(err)}` });
    // give the IPC message a chance to flush before exiting
    setTimeout(() => process.exit(1), 50);
    return;
  }

  process.on('disconnect', () => {
    try {
      db.close();
    } catch {
      /* ignore */
    }
    process.exit(0);
  });

  process.on('message', (raw: unknown) => {
    const msg = raw as ChildQuery;
    if (!msg || msg.type !== 'query') return;
    try {
      const stmt = db.prepare(msg.text); // rejects multiple statements
      const schema = loadGuardSchema(db);
      const drop = schema ? inspectStatement(db, schema, stmt, msg.text, msg.params) : [];
      if (msg.kind === 'select') {
        if (!stmt.reader) throw new Error('custom SQL declared as SELECT does not return rows');
        if (!stmt.readonly) throw new Error('custom SQL SELECT must not modify the database');
        const all = stmt.columns().map((c) => c.name);
        const hidden = new Set(drop.map((k) => all[k]!));
        const columns = all.filter((c) => !hidden.has(c));
        const rows: Array<Record<string, unknown>> = [];
        let truncated = false;
        const it = stmt.iterate(...msg.params) as IterableIterator<Record<string, unknown>>;
        try {
          for (const row of it) {
            if (rows.length >= msg.maxRows) {
              truncated = true;
              break;
            }
            for (const h of hidden) delete row[h];
            rows.push(row);
          }
        } finally {
          it.return?.();
        }
        send({ type: 'result', id: msg.id, columns, rows, truncated });
      } else {
        if (stmt.reader) throw new Error(`custom SQL ${msg.kind.toUpperCase()} must not return rows`);
        const info = stmt.run(...msg.params);
        send({ type: 'changes', id: msg.id, changes: Number(info.changes) });
      }
    } catch (err) {
      send({ type: 'error', id: msg.id, message: errorMessage(err) });
    }
  });

  send({ type: 'ready' });
}

main();
