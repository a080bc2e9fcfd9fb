/**
 * The credit ledger: every change of a balance is one entry (user, amount, balance after, currency, reason,
 * reference, actor), written in the same transaction as the balance itself, so the balance always equals the
 * sum of the user's entries. A debit that would take a balance below zero, or below the credit reserved by the
 * account's live calls (tb_reservations), is refused, atomically, by the database's triggers
 * (src/storage/invariants.ts, reservations.ts): the one check, for this path and any other SQL.
 */
import { PostgresAdapter, sql, type Kysely, type Transaction, type CompiledQuery } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { INVARIANT_MESSAGES } from '../../storage/invariants.js';
import { RESERVATION_MESSAGES } from '../../storage/reservations.js';

/**
 * A debit refused: the balance (or the part of it not reserved by live calls) does not cover it. The transaction
 * it ran in cannot be used any more (PostgreSQL aborts it): the caller reads the balance and the reserved credit
 * for its message after the rollback (`balance`, `reserved`).
 */
export class InsufficientCredit extends Error {
  constructor(
    message: string,
    readonly userId: number,
  ) {
    super(message);
  }
}

/** The triggers' refusals of a debit: below zero (the entry check) or into reserved credit. */
function isDebitRefusal(e: unknown): boolean {
  const m = (e as { message?: unknown } | null)?.message;
  return m === RESERVATION_MESSAGES.debit || m === INVARIANT_MESSAGES.entry;
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

/** A debit that took a balance from at or above a limit to below it. */
export interface Crossing {
  userId: number;
  /** balance after the debit, micro-units */
  balance: number;
  currency: string;
  limit: number;
  /** the debit's reason (call, sms, smsmo, transfer, …) */
  reason: string;
}

/**
 * Watches debits for a balance crossing below a limit (the low-credit notice). Each crossing is one entry: the
 * balance before it was at or above the limit and after it is below, so a notice goes once per crossing, and only
 * after a credit took the balance back up can a later debit cross again.
 */
export interface LowCreditWatch {
  /** The limit now, micro-units (0: off). */
  limit(): number;
  /**
   * Runs inside the debit's transaction (so the notice commits with the debit, or not at all), behind a
   * savepoint: if it fails, only its own statements are undone, never the debit.
   */
  crossed(trx: Transaction<Database>, c: Crossing): Promise<void>;
  failed(e: unknown, c: Crossing): void;
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
  /**
   * The entry statements, compiled once (the hot path of every transfer and charge): the entry from the current
   * balance; on PostgreSQL a credit's read of the balance locks the row, a debit's row is locked beforehand.
   */
  private readonly entryQuery: CompiledQuery;
  private readonly lockedEntryQuery: CompiledQuery;
  private readonly lockQuery: CompiledQuery;
  private watch: LowCreditWatch | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    opts: { cacheMs?: number } = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 0;
    this.lockRows = db.getExecutor().adapter instanceof PostgresAdapter;
    this.balanceQuery = db.selectFrom('tb_users').select(['credit', 'currency']).where('id', '=', 0).compile();
    // parameters in this order: amount, amount, reason, ref, actor, created_at, user id (see postIn)
    const entry = (lock: boolean) =>
      sql`insert into tb_ledger (userid, amount, balance_after, currency, reason, ref, actor, created_at)
        select id, cast(${0} as bigint), credit + ${0}, currency, cast(${''} as text), cast(${''} as text),
          cast(${0} as integer), cast(${0} as bigint)
        from tb_users where id = ${0}${lock ? sql` for update` : sql``}
        returning balance_after, currency`.compile(db);
    this.entryQuery = entry(false);
    this.lockedEntryQuery = entry(this.lockRows);
    this.lockQuery = db.selectFrom('tb_users').select('id').where('id', '=', 0).forUpdate().compile();
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

  /** Sets who is told of a debit crossing below the low-credit limit (the composition root wires the notices). */
  watchLowCredit(w: LowCreditWatch | undefined): void {
    this.watch = w;
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

  /**
   * Applies an entry inside an existing transaction (several entries commit or fail together). A debit the
   * database refuses (below zero, or into credit reserved by live calls) throws InsufficientCredit; the
   * transaction must then be rolled back (the caller's transaction() does).
   */
  async postIn(trx: Transaction<Database>, e: Entry): Promise<number> {
    if (!Number.isSafeInteger(e.amount) || e.amount === 0)
      throw new RangeError('amount must be a non-zero whole number of micro-units');
    this.cache.delete(e.userId);
    // PostgreSQL: a debit locks the account row before its statement starts, so that statement's snapshot sees
    // the balance and every reservation committed by a transaction that held the lock (read from an older
    // snapshot, the entry would not continue the balance and the database would refuse it for that).
    const debit = e.amount < 0;
    if (this.lockRows && debit) await trx.executeQuery({ ...this.lockQuery, parameters: [e.userId] });
    // One statement writes the entry from the current balance; the database's triggers check it (never below
    // zero, never into reserved credit) and apply balance_after to tb_users.credit, so balance and entry cannot
    // diverge (src/storage/invariants.ts).
    const q = debit ? this.entryQuery : this.lockedEntryQuery;
    const parameters = [e.amount, e.amount, e.reason, e.ref ?? '', e.actor ?? 0, Date.now(), e.userId];
    let row: { balance_after: number; currency: string } | undefined;
    try {
      row = (await trx.executeQuery<{ balance_after: number; currency: string }>({ ...q, parameters })).rows[0];
    } catch (err) {
      if (debit && isDebitRefusal(err)) throw new InsufficientCredit('insufficient credit', e.userId);
      throw err;
    }
    if (!row) throw new NoSuchAccount('no such account');
    const after = Number(row.balance_after);
    if (debit && this.watch) await this.checkCrossing(trx, this.watch, e, after, row.currency);
    return after;
  }

  private async checkCrossing(trx: Transaction<Database>, w: LowCreditWatch, e: Entry, after: number, cur: string) {
    const limit = w.limit();
    if (limit <= 0 || after >= limit || after - e.amount < limit) return;
    const c: Crossing = { userId: e.userId, balance: after, currency: cur, limit, reason: e.reason };
    await sql`savepoint lowcredit`.execute(trx);
    try {
      await w.crossed(trx, c);
    } catch (err) {
      await sql`rollback to savepoint lowcredit`.execute(trx);
      w.failed(err, c);
    }
    await sql`release savepoint lowcredit`.execute(trx);
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
