/**
 * Money invariants enforced by the database itself, whatever SQL arrives (triggers, both dialects):
 * - tb_ledger is append-only: UPDATE and DELETE are refused.
 * - A ledger entry continues its user's balance: balance_after = credit + amount (never below zero), and inserting
 *   it applies balance_after to tb_users.credit (an AFTER INSERT trigger), so balance and entry change together.
 * - tb_users.credit changes only through that: an UPDATE of credit is refused unless the user's newest entry takes
 *   exactly the old credit to the new one; an account is created with credit 0.
 * - An account that holds credit or has a call in progress (a row in tb_livecalls) cannot be deleted.
 */
import { type Kysely, sql } from 'kysely';
import type { Dialect } from './dialect.js';

/** Messages raised by the triggers (tests and callers match on them). */
export const INVARIANT_MESSAGES = {
  appendOnly: 'tb_ledger is append-only',
  entry: 'ledger entry does not continue the balance',
  credit: 'tb_users.credit changes only with its ledger entry',
  newCredit: 'an account starts with credit 0 (credit comes through the ledger)',
  deleteUser: 'an account with credit or a call in progress cannot be deleted',
} as const;

const M = INVARIANT_MESSAGES;

function sqliteTriggers(): string[] {
  return [
    `CREATE TRIGGER tr_ledger_no_update BEFORE UPDATE ON tb_ledger
     BEGIN SELECT RAISE(ABORT, '${M.appendOnly}'); END`,
    `CREATE TRIGGER tr_ledger_no_delete BEFORE DELETE ON tb_ledger
     BEGIN SELECT RAISE(ABORT, '${M.appendOnly}'); END`,
    `CREATE TRIGGER tr_ledger_check BEFORE INSERT ON tb_ledger
     WHEN NEW.amount = 0 OR NEW.balance_after < 0
       OR NEW.balance_after IS NOT (SELECT credit + NEW.amount FROM tb_users WHERE id = NEW.userid)
     BEGIN SELECT RAISE(ABORT, '${M.entry}'); END`,
    `CREATE TRIGGER tr_ledger_apply AFTER INSERT ON tb_ledger
     BEGIN UPDATE tb_users SET credit = NEW.balance_after WHERE id = NEW.userid; END`,
    `CREATE TRIGGER tr_users_credit BEFORE UPDATE OF credit ON tb_users
     WHEN NEW.credit IS NOT OLD.credit AND NOT EXISTS (
       SELECT 1 FROM (SELECT amount, balance_after FROM tb_ledger WHERE userid = OLD.id ORDER BY id DESC LIMIT 1) l
       WHERE l.balance_after = NEW.credit AND l.balance_after - l.amount = OLD.credit)
     BEGIN SELECT RAISE(ABORT, '${M.credit}'); END`,
    `CREATE TRIGGER tr_users_new_credit BEFORE INSERT ON tb_users WHEN NEW.credit IS NOT 0
     BEGIN SELECT RAISE(ABORT, '${M.newCredit}'); END`,
    `CREATE TRIGGER tr_users_delete BEFORE DELETE ON tb_users
     WHEN OLD.credit <> 0 OR EXISTS (SELECT 1 FROM tb_livecalls WHERE userid = OLD.id)
     BEGIN SELECT RAISE(ABORT, '${M.deleteUser}'); END`,
  ];
}

function pgTriggers(): string[] {
  const fn = (name: string, body: string) =>
    `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body} END $fn$`;
  const raise = (msg: string) => `RAISE EXCEPTION '${msg}' USING ERRCODE = '23514';`;
  return [
    fn('vx_ledger_append_only', raise(M.appendOnly)),
    `CREATE TRIGGER tr_ledger_no_change BEFORE UPDATE OR DELETE ON tb_ledger
     FOR EACH ROW EXECUTE FUNCTION vx_ledger_append_only()`,
    fn(
      'vx_ledger_check',
      `IF NEW.amount = 0 OR NEW.balance_after < 0 OR NEW.balance_after IS DISTINCT FROM
         (SELECT credit + NEW.amount FROM tb_users WHERE id = NEW.userid) THEN ${raise(M.entry)} END IF;
       RETURN NEW;`,
    ),
    `CREATE TRIGGER tr_ledger_check BEFORE INSERT ON tb_ledger FOR EACH ROW EXECUTE FUNCTION vx_ledger_check()`,
    fn('vx_ledger_apply', `UPDATE tb_users SET credit = NEW.balance_after WHERE id = NEW.userid; RETURN NULL;`),
    `CREATE TRIGGER tr_ledger_apply AFTER INSERT ON tb_ledger FOR EACH ROW EXECUTE FUNCTION vx_ledger_apply()`,
    fn(
      'vx_users_credit',
      `IF NEW.credit IS DISTINCT FROM OLD.credit AND NOT EXISTS (
         SELECT 1 FROM (SELECT amount, balance_after FROM tb_ledger WHERE userid = OLD.id ORDER BY id DESC LIMIT 1) l
         WHERE l.balance_after = NEW.credit AND l.balance_after - l.amount = OLD.credit) THEN ${raise(M.credit)} END IF;
       RETURN NEW;`,
    ),
    `CREATE TRIGGER tr_users_credit BEFORE UPDATE OF credit ON tb_users
     FOR EACH ROW EXECUTE FUNCTION vx_users_credit()`,
    fn('vx_users_new_credit', `IF NEW.credit IS DISTINCT FROM 0 THEN ${raise(M.newCredit)} END IF; RETURN NEW;`),
    `CREATE TRIGGER tr_users_new_credit BEFORE INSERT ON tb_users FOR EACH ROW EXECUTE FUNCTION vx_users_new_credit()`,
    fn(
      'vx_users_delete',
      `IF OLD.credit <> 0 OR EXISTS (SELECT 1 FROM tb_livecalls WHERE userid = OLD.id) THEN ${raise(M.deleteUser)}
       END IF; RETURN OLD;`,
    ),
    `CREATE TRIGGER tr_users_delete BEFORE DELETE ON tb_users FOR EACH ROW EXECUTE FUNCTION vx_users_delete()`,
  ];
}

/** Installs the triggers (migration 0007). */
export async function installInvariants(db: Kysely<any>, dialect: Dialect): Promise<void> {
  for (const stmt of dialect === 'pg' ? pgTriggers() : sqliteTriggers()) await sql.raw(stmt).execute(db);
}
