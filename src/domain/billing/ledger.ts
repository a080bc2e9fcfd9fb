/**
 * The credit ledger: every change of a balance is one entry (user, amount, balance after, currency, reason,
 * reference, actor), written in the same transaction as the balance itself, so the balance always equals the
 * sum of the user's entries. A debit that would take a balance below zero is refused, atomically.
 */
import type { Kysely, Transaction, CompiledQuery } from 'kysely';
import type { Database } from '../../storage/schema.js';

export class InsufficientCredit extends Error {}
export class NoSuchAccount extends Error {}

export interface Entry {
  userId: number;
  amount: number; // micro-units, + credit / - debit
  reason: string;
  ref?: string;
  actor?: number;
}

export class Ledger {
  /** `balance` is on the API's hot path: its query is compiled once and run with new parameters. */
  private readonly balanceQuery: CompiledQuery;

  constructor(private readonly db: Kysely<Database>) {
    this.balanceQuery = db.selectFrom('tb_users').select(['credit', 'currency']).where('id', '=', 0).compile();
  }

  async balance(userId: number): Promise<{ credit: number; currency: string } | undefined> {
    const r = (await this.db.executeQuery<{ credit: number; currency: string }>({ ...this.balanceQuery, parameters: [userId] })).rows[0];
    return r ? { credit: Number(r.credit), currency: r.currency } : undefined;
  }

  /** Applies one entry; returns the balance after it. */
  async post(e: Entry): Promise<number> {
    return this.db.transaction().execute((trx) => this.postIn(trx, e));
  }

  /** Applies an entry inside an existing transaction (several entries commit or fail together). */
  async postIn(trx: Transaction<Database>, e: Entry): Promise<number> {
    if (!Number.isSafeInteger(e.amount) || e.amount === 0) throw new RangeError('amount must be a non-zero whole number of micro-units');
    const row = await trx
      .updateTable('tb_users')
      .set((eb) => ({ credit: eb('credit', '+', e.amount) }))
      .where('id', '=', e.userId)
      .where((eb) => eb(eb('credit', '+', e.amount), '>=', 0))
      .returning(['credit', 'currency'])
      .executeTakeFirst();
    if (!row) {
      const exists = await trx.selectFrom('tb_users').select('id').where('id', '=', e.userId).executeTakeFirst();
      throw exists ? new InsufficientCredit('insufficient credit') : new NoSuchAccount('no such account');
    }
    const after = Number(row.credit);
    await trx
      .insertInto('tb_ledger')
      .values({
        userid: e.userId,
        amount: e.amount,
        balance_after: after,
        currency: row.currency,
        reason: e.reason,
        ref: e.ref ?? '',
        actor: e.actor ?? 0,
        created_at: Date.now(),
      })
      .execute();
    return after;
  }
}
