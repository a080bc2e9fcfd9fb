/**
 * Credit reservations (tb_reservations, one row per live call leg): the credit a call's maxduration may spend,
 * held in the database so that every node's calls and every debit path see it. The database enforces the rules
 * (src/storage/reservations.ts); this module writes the rows.
 *
 *   const h = await reservations.hold(
 *     { userId, callid, leg, node, now, expiresAt },
 *     (account) => ({ amount, …plan }) | { refuse: 402, reason },   // sizes the hold from what is available
 *     (trx) => insert the live-call row,                               // in the same transaction
 *   );
 *
 * hold() runs in one transaction: the account row is read (locked FOR UPDATE on PostgreSQL, so reservations and
 * debits of one account queue on it; SQLite writers are serialised), available = credit − Σ reserved, and the row
 * is inserted. A CDR charge releases its reservation in its own transaction (CdrService.recordCall).
 */
import { PostgresAdapter, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Ledger } from './ledger.js';

export interface HoldKey {
  userId: number;
  callid: string;
  leg: string;
  node: string;
  now: number;
  expiresAt: number;
}

/** What the account has when a hold is sized (micro-units). */
export interface AccountView {
  credit: number;
  currency: string;
  /** Σ reserved by the account's live calls on every node */
  reserved: number;
  /** max(0, credit − reserved) */
  available: number;
}

export type Refusal = { refuse: number; reason: string };

export class Reservations {
  private readonly lockRows: boolean;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly ledger: Ledger,
  ) {
    this.lockRows = db.getExecutor().adapter instanceof PostgresAdapter;
  }

  /**
   * Sizes and inserts a reservation, then runs `alsoIn` in the same transaction. `size` answers the plan (with
   * the amount to hold, 0 for none) or a refusal; a refusal rolls nothing back because nothing was written.
   */
  async hold<P extends { amount: number }>(
    k: HoldKey,
    size: (a: AccountView) => P | Refusal,
    alsoIn: (trx: Transaction<Database>, plan: P) => Promise<void>,
  ): Promise<P | Refusal> {
    return this.ledger.transaction(async (trx) => {
      let q = trx.selectFrom('tb_users').select(['credit', 'currency']).where('id', '=', k.userId);
      if (this.lockRows) q = q.forUpdate();
      const u = await q.executeTakeFirst();
      if (!u) return { refuse: 404, reason: 'no such account' };
      const credit = Number(u.credit);
      const reserved = await this.ledger.reserved(k.userId, trx);
      const plan = size({ credit, currency: u.currency, reserved, available: Math.max(0, credit - reserved) });
      if ('refuse' in plan) return plan;
      if (plan.amount > 0) {
        await trx
          .insertInto('tb_reservations')
          .values({
            userid: k.userId,
            callid: k.callid,
            leg: k.leg,
            amount: plan.amount,
            node: k.node.slice(0, 128),
            created_at: k.now,
            expires_at: k.expiresAt,
          })
          .execute();
      }
      await alsoIn(trx, plan);
      return plan;
    });
  }

  /** Releases the reservation of a call leg (inside `trx` when given). */
  async release(callid: string, leg: string, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.deleteFrom('tb_reservations').where('callid', '=', callid).where('leg', '=', leg).execute();
  }

  /** Moves the expiry of the reservations of these calls (the owning node's heartbeat). */
  async refresh(callids: string[], expiresAt: number): Promise<void> {
    for (let i = 0; i < callids.length; i += 500) {
      await this.db
        .updateTable('tb_reservations')
        .set({ expires_at: expiresAt })
        .where('callid', 'in', callids.slice(i, i + 500))
        .execute();
    }
  }

  /**
   * Reservations no live call stands behind any more: of `node` (a previous run of it; null: none) or expired (a
   * dead node), without a tb_livecalls row, and not `live` in this process. Deleted; answers how many.
   */
  async sweep(node: string | null, now: number, live: (callid: string, leg: string) => boolean): Promise<number> {
    const rows = await this.db
      .selectFrom('tb_reservations')
      .select(['id', 'callid', 'leg'])
      .where((w) =>
        node === null ? w('expires_at', '<', now) : w.or([w('node', '=', node), w('expires_at', '<', now)]),
      )
      .execute();
    let n = 0;
    for (const r of rows) {
      if (live(r.callid, r.leg)) continue;
      const key = r.leg ? `${r.callid}/${r.leg}` : r.callid;
      const row = await this.db
        .selectFrom('tb_livecalls')
        .select('callid')
        .where('callid', '=', key)
        .executeTakeFirst();
      if (row) continue;
      await this.db.deleteFrom('tb_reservations').where('id', '=', Number(r.id)).execute();
      n++;
    }
    return n;
  }
}

type Held = { userid: number; callid: string; leg: string; amount: number; node: string; created_at: number };

/**
 * The part of a CDR charge that touches reservations, inside the charge's transaction: the leg's own reservation
 * is released; the other legs of the same call and account (callback / p2p: one leg holds the budget of both)
 * are taken out too and handed back by `restore` once the debit is written, shrunk by what the debit spent of
 * them. `others` is what the account's other calls hold: the charge must leave it untouched.
 */
export async function releaseForCharge(
  trx: Transaction<Database>,
  callid: string,
  leg: string,
  userId: number,
): Promise<{ others: number; shared: number; restore: (balanceAfter: number) => Promise<void> }> {
  await trx.deleteFrom('tb_reservations').where('callid', '=', callid).where('leg', '=', leg).execute();
  const siblings = (await trx
    .selectFrom('tb_reservations')
    .select(['userid', 'callid', 'leg', 'amount', 'node', 'created_at', 'expires_at'])
    .where('callid', '=', callid)
    .where('userid', '=', userId)
    .execute()) as Array<Held & { expires_at: number }>;
  const total = await trx
    .selectFrom('tb_reservations')
    .select((eb) => eb.fn.sum<number>('amount').as('s'))
    .where('userid', '=', userId)
    .executeTakeFirst();
  const shared = siblings.reduce((a, r) => a + Number(r.amount), 0);
  const others = Number(total?.s ?? 0) - shared;
  if (siblings.length)
    await trx.deleteFrom('tb_reservations').where('callid', '=', callid).where('userid', '=', userId).execute();
  const restore = async (balanceAfter: number) => {
    let keep = Math.min(shared, Math.max(0, balanceAfter - others));
    for (const r of siblings) {
      const amount = Math.min(Number(r.amount), keep);
      keep -= amount;
      if (amount > 0)
        await trx
          .insertInto('tb_reservations')
          .values({ ...r, amount })
          .execute();
    }
  };
  return { others, shared, restore };
}
