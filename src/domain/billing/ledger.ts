/**
 * The credit ledger: every change of a balance is one entry (user, amount, balance after, currency, reason,
 * reference, actor), written in the same transaction as the balance itself, so the balance always equals the
 * sum of the user's entries. A debit that would take a balance below zero, or below the credit reserved by the
 * account's live calls (tb_reservations), is refused, atomically; the database refuses it too
 * (src/storage/reservations.ts), so no other path can spend reserved credit.
 */
import { PostgresAdapter, sql, type Kysely, type Transaction, type CompiledQuery } from 'kysely';
import type { Database } from '../../storage/schema.js';

/** A debit refused: the balance (or the part of it not reserved by live calls) does not cover it. */
export class InsufficientCredit extends Error {
  constructor(
    message: string,
    /** the balance and the part of it reserved by live calls when the debit was refused (micro-units) */
    readonly credit = 0,
    readonly reserved = 0,
  ) {
    super(message);
  }
}
export class NoSuchAccount extends Error {}

/**
 * A transaction that failed only because it ran concurrently with another (PostgreSQL serialization failure or
 * deadlock).
 */
export function isRetryableTxError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}

/** Credit moved between two accounts: two entries with the same reference. */
export interface Transfer {
  from: number;
  to: number;
  amount: number; // micro-units, > 0
  reason: string;
  ref: string;
  actor?: number;
}

export interface LedgerMismatch {
  userId: number;
  credit: number;
  ledgerSum: number;
}

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
  /**
   * Balances read recently (only when cacheMs > 0: on SQLite, where kysely's single connection serialises every
   * statement, so a read can never see a state a running transaction is about to change). Every ledger write drops
   * the user's entry; invalidate() drops all (after out-of-band SQL); cacheMs bounds what an outside writer can stale.
   */
  private readonly cache = new Map<number, { credit: number; currency: string; at: number }>();
  private readonly cacheMs: number;
  /** PostgreSQL: the balance row is locked (FOR UPDATE) while its entry is written; SQLite serialises writers. */
  private readonly lockRows: boolean;

  constructor(
    private readonly db: Kysely<Database>,
    opts: { cacheMs?: number } = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 0;
    this.lockRows = db.getExecutor().adapter instanceof PostgresAdapter;
    this.balanceQuery = db.selectFrom('tb_users').select(['credit', 'currency']).where('id', '=', 0).compile();
  }

  async balance(userId: number): Promise<{ credit: number; currency: string } | undefined> {
    const now = this.cacheMs ? Date.now() : 0;
    if (this.cacheMs) {
      const hit = this.cache.get(userId);
      if (hit && now - hit.at < this.cacheMs) return { credit: hit.credit, currency: hit.currency };
    }
    const r = (
      await this.db.executeQuery<{ credit: number; currency: string }>({ ...this.balanceQuery, parameters: [userId] })
    ).rows[0];
    if (this.cacheMs && r) {
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(userId, { credit: Number(r.credit), currency: r.currency, at: now });
    }
    return r ? { credit: Number(r.credit), currency: r.currency } : undefined;
  }

  /** Credit held by the account's live calls, on every node (micro-units). */
  async reserved(userId: number, db: Kysely<Database> = this.db): Promise<number> {
    const r = await db
      .selectFrom('tb_reservations')
      .select((eb) => eb.fn.sum<number>('amount').as('s'))
      .where('userid', '=', userId)
      .executeTakeFirst();
    return Number(r?.s ?? 0);
  }

  /** Forgets cached balances (one user, or all after SQL run outside the ledger). */
  invalidate(userId?: number): void {
    if (userId === undefined) this.cache.clear();
    else this.cache.delete(userId);
  }

  /** Applies one entry; returns the balance after it. */
  async post(e: Entry): Promise<number> {
    return this.db.transaction().execute((trx) => this.postIn(trx, e));
  }

  /** Applies an entry inside an existing transaction (several entries commit or fail together). */
  async postIn(trx: Transaction<Database>, e: Entry): Promise<number> {
    if (!Number.isSafeInteger(e.amount) || e.amount === 0)
      throw new RangeError('amount must be a non-zero whole number of micro-units');
    this.cache.delete(e.userId);
    // PostgreSQL: a debit locks the account row before its statement starts, so that statement's snapshot sees
    // every reservation committed by a transaction that held the lock (a FOR UPDATE inside it would re-read the
    // row, not the reservations, and the database's check would then refuse the entry with a bare error).
    if (this.lockRows && e.amount < 0)
      await trx.selectFrom('tb_users').select('id').where('id', '=', e.userId).forUpdate().execute();
    // One statement writes the entry from the current balance (locked on PostgreSQL); the database's trigger
    // applies balance_after to tb_users.credit, so balance and entry cannot diverge (src/storage/invariants.ts).
    const row = await trx
      .insertInto('tb_ledger')
      .columns(['userid', 'amount', 'balance_after', 'currency', 'reason', 'ref', 'actor', 'created_at'])
      .expression((eb) => {
        const q = eb
          .selectFrom('tb_users')
          .select((s) => [
            'id',
            sql<number>`cast(${e.amount} as bigint)`.as('amount'),
            s('credit', '+', e.amount).as('balance_after'),
            'currency',
            sql<string>`cast(${e.reason} as text)`.as('reason'),
            sql<string>`cast(${e.ref ?? ''} as text)`.as('ref'),
            sql<number>`cast(${e.actor ?? 0} as integer)`.as('actor'),
            sql<number>`cast(${Date.now()} as bigint)`.as('created_at'),
          ])
          .where('id', '=', e.userId)
          .where((w) =>
            e.amount > 0
              ? w(w('credit', '+', e.amount), '>=', 0)
              : w(
                  w('credit', '+', e.amount),
                  '>=',
                  w.fn.coalesce(
                    w
                      .selectFrom('tb_reservations')
                      .select((r) => r.fn.sum<number>('amount').as('s'))
                      .where('tb_reservations.userid', '=', e.userId),
                    sql<number>`0`,
                  ),
                ),
          );
        return this.lockRows ? q.forUpdate() : q;
      })
      .returning(['balance_after', 'currency'])
      .executeTakeFirst();
    if (!row) {
      const u = await trx.selectFrom('tb_users').select('credit').where('id', '=', e.userId).executeTakeFirst();
      if (!u) throw new NoSuchAccount('no such account');
      const reserved = await this.reserved(e.userId, trx);
      throw new InsufficientCredit('insufficient credit', Number(u.credit), reserved);
    }
    const after = Number(row.balance_after);
    return after;
  }

  /**
   * Moves `amount` from one account to another inside `trx`: two entries with the same reference. The two rows
   * are updated in id order (lower id first), so concurrent transfers between the same accounts in opposite
   * directions wait for each other instead of deadlocking on PostgreSQL; the debit stays conditional (never
   * below zero) and a failure rolls the whole transaction back.
   */
  async transferIn(trx: Transaction<Database>, t: Transfer): Promise<{ fromAfter: number; toAfter: number }> {
    if (!Number.isSafeInteger(t.amount) || t.amount <= 0)
      throw new RangeError('transfer amount must be a positive whole number of micro-units');
    if (t.from === t.to) throw new RangeError('cannot transfer to the same account');
    const debit: Entry = { userId: t.from, amount: -t.amount, reason: t.reason, ref: t.ref, actor: t.actor };
    const credit: Entry = { userId: t.to, amount: t.amount, reason: t.reason, ref: t.ref, actor: t.actor };
    if (t.from < t.to) {
      const fromAfter = await this.postIn(trx, debit);
      const toAfter = await this.postIn(trx, credit);
      return { fromAfter, toAfter };
    }
    const toAfter = await this.postIn(trx, credit);
    const fromAfter = await this.postIn(trx, debit);
    return { fromAfter, toAfter };
  }

  /** Runs `fn` in a transaction, retrying (a few times, with jitter) when it lost a serialization/deadlock race. */
  async transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>, attempts = 5): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (e) {
        if (i >= attempts || !isRetryableTxError(e)) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * i));
      }
    }
  }

  /** The sum of a user's entries (equals tb_users.credit while the ledger is consistent). */
  async entriesSum(userId: number): Promise<number> {
    const r = await this.db
      .selectFrom('tb_ledger')
      .select((eb) => eb.fn.sum<number>('amount').as('s'))
      .where('userid', '=', userId)
      .executeTakeFirst();
    return Number(r?.s ?? 0);
  }

  /** Accounts whose balance differs from the sum of their entries (empty while the ledger is consistent). */
  async audit(): Promise<LedgerMismatch[]> {
    const users = await this.db.selectFrom('tb_users').select(['id', 'credit']).execute();
    const sums = await this.db
      .selectFrom('tb_ledger')
      .select((eb) => ['userid', eb.fn.sum<number>('amount').as('s')])
      .groupBy('userid')
      .execute();
    const byUser = new Map(sums.map((r) => [Number(r.userid), Number(r.s)]));
    const out: LedgerMismatch[] = [];
    for (const u of users) {
      const credit = Number(u.credit);
      const ledgerSum = byUser.get(Number(u.id)) ?? 0;
      if (credit !== ledgerSum) out.push({ userId: Number(u.id), credit, ledgerSum });
    }
    return out;
  }
}
