/**
 * Credit reservations in the database (migration 0008): one tb_reservations row per live call leg, holding the
 * credit its maxduration may spend. The database enforces, whatever SQL arrives (triggers, both dialects):
 * - a reservation fits the credit: credit − Σ reserved of the user ≥ its amount when it is inserted (PostgreSQL
 *   locks the user row first, so concurrent reservations and debits of one account queue on it);
 * - a reservation is inserted and deleted (released), its amount and user never changed;
 * - a ledger debit leaves at least the reserved credit: balance_after ≥ Σ reserved of the user. The CDR charge of
 *   a call deletes that call's reservation in the same transaction first, so it may spend what it held.
 * tb_livecalls gets the node that owns the call, so a node recovers only its own rows or those of a dead node.
 */
import { type Kysely, sql } from 'kysely';
import type { Dialect } from './dialect.js';

export const RESERVATION_MESSAGES = {
  reserve: 'reservation exceeds the available credit',
  fixed: 'a reservation is never changed, only released',
  debit: 'debit would spend credit reserved by live calls',
} as const;

const M = RESERVATION_MESSAGES;

const reservedOf = (user: string) => `(SELECT COALESCE(SUM(amount), 0) FROM tb_reservations WHERE userid = ${user})`;

function sqliteTriggers(): string[] {
  return [
    `CREATE TRIGGER tr_reservations_check BEFORE INSERT ON tb_reservations
     WHEN NEW.amount < 0 OR NOT EXISTS (SELECT 1 FROM tb_users WHERE id = NEW.userid)
       OR (SELECT credit FROM tb_users WHERE id = NEW.userid) - ${reservedOf('NEW.userid')} < NEW.amount
     BEGIN SELECT RAISE(ABORT, '${M.reserve}'); END`,
    `CREATE TRIGGER tr_reservations_fixed BEFORE UPDATE ON tb_reservations
     WHEN NEW.amount IS NOT OLD.amount OR NEW.userid IS NOT OLD.userid
     BEGIN SELECT RAISE(ABORT, '${M.fixed}'); END`,
    `CREATE TRIGGER tr_ledger_reserved BEFORE INSERT ON tb_ledger
     WHEN NEW.amount < 0 AND NEW.balance_after < ${reservedOf('NEW.userid')}
     BEGIN SELECT RAISE(ABORT, '${M.debit}'); END`,
  ];
}

function pgTriggers(): string[] {
  const fn = (name: string, body: string) =>
    `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body} END $fn$`;
  const raise = (msg: string) => `RAISE EXCEPTION '${msg}' USING ERRCODE = '23514';`;
  // Each statement of a plpgsql function reads a fresh snapshot (READ COMMITTED): after the row lock is granted,
  // the sum sees every reservation and entry committed by the transaction that held it.
  const lockUser = `PERFORM 1 FROM tb_users WHERE id = NEW.userid FOR UPDATE;`;
  return [
    fn(
      'vx_reservations_check',
      `${lockUser}
       IF NEW.amount < 0 OR NOT EXISTS (SELECT 1 FROM tb_users WHERE id = NEW.userid)
         OR (SELECT credit FROM tb_users WHERE id = NEW.userid) - ${reservedOf('NEW.userid')} < NEW.amount
       THEN ${raise(M.reserve)} END IF;
       RETURN NEW;`,
    ),
    `CREATE TRIGGER tr_reservations_check BEFORE INSERT ON tb_reservations
     FOR EACH ROW EXECUTE FUNCTION vx_reservations_check()`,
    fn(
      'vx_reservations_fixed',
      `IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.userid IS DISTINCT FROM OLD.userid THEN ${raise(M.fixed)}
       END IF; RETURN NEW;`,
    ),
    `CREATE TRIGGER tr_reservations_fixed BEFORE UPDATE ON tb_reservations
     FOR EACH ROW EXECUTE FUNCTION vx_reservations_fixed()`,
    fn(
      'vx_ledger_reserved',
      `IF NEW.amount < 0 THEN
         ${lockUser}
         IF NEW.balance_after < ${reservedOf('NEW.userid')} THEN ${raise(M.debit)} END IF;
       END IF;
       RETURN NEW;`,
    ),
    `CREATE TRIGGER tr_ledger_reserved BEFORE INSERT ON tb_ledger FOR EACH ROW EXECUTE FUNCTION vx_ledger_reserved()`,
  ];
}

/** Creates tb_reservations, its triggers and the reserved check of ledger debits; adds tb_livecalls.node. */
export async function installReservations(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const idType = dialect === 'pg' ? 'serial' : 'integer';
  await db.schema
    .createTable('tb_reservations')
    .addColumn('id', idType, (c) => (dialect === 'pg' ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('userid', 'integer', (c) => c.notNull())
    .addColumn('callid', 'varchar(256)', (c) => c.notNull())
    .addColumn('leg', 'varchar(16)', (c) => c.notNull().defaultTo(''))
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('node', 'varchar(128)', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('uq_reservations_call', ['callid', 'leg'])
    .execute();
  await db.schema.createIndex('ix_reservations_user').on('tb_reservations').column('userid').execute();
  await db.schema.createIndex('ix_reservations_node').on('tb_reservations').columns(['node', 'expires_at']).execute();
  await db.schema
    .alterTable('tb_livecalls')
    .addColumn('node', 'varchar(128)', (c) => c.notNull().defaultTo(''))
    .execute();
  for (const stmt of dialect === 'pg' ? pgTriggers() : sqliteTriggers()) await sql.raw(stmt).execute(db);
}
