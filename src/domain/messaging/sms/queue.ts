/**
 * The durable outbound SMS queue (tb_sms, tb_smsparts): claims with a lease, the per-part at-most-once marks,
 * acknowledgements, retries, and the recovery of rows a stopped process left in `submitting`.
 *
 * At-most-once: parts go out in order; before part k is written, `sent` becomes k+1 (committed); when it is
 * settled (acknowledged, refused, or unconfirmed), `acked` becomes k+1. A row left in `submitting` (its process
 * stopped, or its lease ran out) is resumed from `sent`: the parts between `acked` and `sent` may have reached the
 * SMSC, so they are recorded as unconfirmed and never written again; the parts from `sent` on were never written.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, SmsTable } from '../../../storage/schema.js';
import type { Dialect } from '../../../storage/dialect.js';
import { GroupCommit } from './groupcommit.js';

export type SmsState = 'accepted' | 'submitting' | 'submitted' | 'delivered' | 'failed';

export interface SmsRow {
  id: number;
  userid: number;
  sender: string;
  destination: string;
  text: string;
  encoding: 'gsm7' | 'ucs2';
  parts: number;
  sent: number;
  acked: number;
  ref: number;
  gateway: string;
  state: SmsState;
  attempts: number;
  nextTryAt: number;
  owner: string;
  leaseUntil: number;
  error: string;
  cost: number;
  refunded: boolean;
  createdAt: number;
  updatedAt: number;
}

type Raw = { [K in keyof SmsTable]: any };

export function smsFromRow(r: Raw): SmsRow {
  return {
    id: Number(r.id),
    userid: Number(r.userid),
    sender: r.sender,
    destination: r.destination,
    text: r.text,
    encoding: r.encoding,
    parts: Number(r.parts),
    sent: Number(r.sent),
    acked: Number(r.acked),
    ref: Number(r.ref),
    gateway: r.gateway,
    state: r.state,
    attempts: Number(r.attempts),
    nextTryAt: Number(r.next_try_at),
    owner: r.owner,
    leaseUntil: Number(r.lease_until),
    error: r.error,
    cost: Number(r.cost),
    refunded: Number(r.refunded) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export interface NewSms {
  userid: number;
  sender: string;
  destination: string;
  text: string;
  encoding: 'gsm7' | 'ucs2';
  parts: number;
  ref: number;
  cost: number;
}

export interface SmsPart {
  smsid: number;
  part: number;
  gateway: string;
  messageId: string;
  state: string;
}

export class SmsQueue {
  private readonly group: GroupCommit;
  /** acknowledgements not yet committed, by gateway and message id: a receipt can overtake its own submit_sm_resp */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(
    readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {
    this.group = new GroupCommit(db);
  }

  async insertIn(trx: Transaction<Database>, m: NewSms, now = Date.now()): Promise<number> {
    const r = await trx
      .insertInto('tb_sms')
      .values({ ...m, state: 'accepted', next_try_at: now, created_at: now, updated_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(r.id);
  }

  /** Claims up to `n` due rows for `owner` (state accepted → submitting with a lease), atomically. */
  async claim(n: number, owner: string, leaseMs: number, now = Date.now()): Promise<SmsRow[]> {
    if (n <= 0) return [];
    const due = this.db
      .selectFrom('tb_sms')
      .select('id')
      .where('state', '=', 'accepted')
      .where('next_try_at', '<=', now)
      .orderBy('next_try_at')
      .orderBy('id')
      .limit(n);
    const set = { state: 'submitting', owner, lease_until: now + leaseMs, updated_at: now };
    // PostgreSQL: the due rows are locked as they are picked, and rows another claimer holds are skipped; SQLite
    // has one writer at a time, and the state check in the UPDATE keeps a row from being claimed twice either way
    const rows =
      this.dialect === 'pg'
        ? await this.db
            .with('due', () => due.forUpdate().skipLocked())
            .updateTable('tb_sms')
            .from('due')
            .set(set)
            .whereRef('tb_sms.id', '=', 'due.id')
            .where('tb_sms.state', '=', 'accepted')
            .returningAll('tb_sms')
            .execute()
        : await this.db
            .updateTable('tb_sms')
            .set(set)
            .where('id', 'in', due)
            .where('state', '=', 'accepted')
            .returningAll()
            .execute();
    return rows.map((r) => smsFromRow(r as Raw)).sort((a, b) => a.id - b.id);
  }

  /** The at-most-once mark: part `part` (from 0) is about to be written; renews the lease. */
  markSent(id: number, part: number, leaseUntil: number): Promise<void> {
    return this.group.run(async (trx) => {
      await trx
        .updateTable('tb_sms')
        .set({ sent: part + 1, lease_until: leaseUntil })
        .where('id', '=', id)
        .execute();
    });
  }

  /** Part `part` settled at the SMSC (state submitted, or unconfirmed without a message id). */
  settlePart(id: number, p: Omit<SmsPart, 'smsid'>, last: boolean, now = Date.now()): Promise<void> {
    const key = `${p.gateway}\n${p.messageId}`;
    const done = this.group.run(async (trx) => {
      await trx
        .insertInto('tb_smsparts')
        .values({
          smsid: id,
          part: p.part,
          gateway: p.gateway,
          message_id: p.messageId,
          state: p.state,
          updated_at: now,
        })
        .execute();
      await trx
        .updateTable('tb_sms')
        .set({
          acked: p.part + 1,
          gateway: p.gateway,
          updated_at: now,
          ...(last ? { state: 'submitted', owner: '', lease_until: 0 } : {}),
        })
        .where('id', '=', id)
        .execute();
    });
    if (!p.messageId) return done;
    this.settling.set(key, done);
    const forget = () => {
      if (this.settling.get(key) === done) this.settling.delete(key);
    };
    done.then(forget, forget);
    return done;
  }

  /**
   * Back to the queue with `settled` parts settled (the part after them was not written): due again at `nextTryAt`.
   */
  async retry(
    id: number,
    o: { nextTryAt: number; error: string; gateway?: string; count: boolean; settled: number },
  ): Promise<void> {
    const now = Date.now();
    await this.db
      .updateTable('tb_sms')
      .set({
        state: 'accepted',
        owner: '',
        lease_until: 0,
        sent: o.settled,
        acked: o.settled,
        next_try_at: o.nextTryAt,
        error: o.error.slice(0, 500),
        updated_at: now,
        ...(o.gateway ? { gateway: o.gateway } : {}),
        ...(o.count ? { attempts: sql<number>`attempts + 1` } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** A final state (failed / delivered) unless it already has one; true when this call set it. */
  async finalIn(trx: Transaction<Database>, id: number, state: 'failed' | 'delivered', error: string) {
    const r = await trx
      .updateTable('tb_sms')
      .set({ state, error: error.slice(0, 500), owner: '', lease_until: 0, updated_at: Date.now() })
      .where('id', '=', id)
      .where('state', 'not in', ['failed', 'delivered'])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async markRefundedIn(trx: Transaction<Database>, id: number): Promise<boolean> {
    const r = await trx
      .updateTable('tb_sms')
      .set({ refunded: 1 })
      .where('id', '=', id)
      .where('refunded', '=', 0)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Rows left in `submitting` by a stopped process: those of `owner` (this process's earlier run, at its start)
   * and any whose lease ran out. Each is settled by the at-most-once rule (see the head of this file). Returns the
   * rows moved.
   */
  async recover(owner: string | undefined, now = Date.now()): Promise<number> {
    const stale = await this.db
      .selectFrom('tb_sms')
      .selectAll()
      .where('state', '=', 'submitting')
      .where((eb) =>
        owner === undefined
          ? eb('lease_until', '<', now)
          : eb.or([eb('owner', '=', owner), eb('lease_until', '<', now)]),
      )
      .limit(1000)
      .execute();
    let moved = 0;
    for (const raw of stale) {
      const r = smsFromRow(raw as Raw);
      await this.db.transaction().execute(async (trx) => {
        const done = r.sent >= r.parts;
        const u = await trx
          .updateTable('tb_sms')
          .set({
            acked: Math.max(r.acked, r.sent),
            state: done ? 'submitted' : 'accepted',
            owner: '',
            lease_until: 0,
            next_try_at: now,
            updated_at: now,
            ...(r.sent > r.acked
              ? { error: `part(s) ${r.acked + 1}-${r.sent} unconfirmed after a stop: not sent again (at most once)` }
              : {}),
          })
          .where('id', '=', r.id)
          .where('state', '=', 'submitting')
          .where('owner', '=', r.owner)
          .where('lease_until', '=', r.leaseUntil)
          .executeTakeFirst();
        if (Number(u.numUpdatedRows) !== 1) return;
        moved++;
        for (let k = r.acked; k < r.sent; k++)
          await trx
            .insertInto('tb_smsparts')
            .values({ smsid: r.id, part: k, gateway: r.gateway, message_id: '', state: 'unconfirmed', updated_at: now })
            .execute();
      });
    }
    return moved;
  }

  async byId(id: number): Promise<SmsRow | undefined> {
    const r = await this.db.selectFrom('tb_sms').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? smsFromRow(r as Raw) : undefined;
  }

  async recent(userid: number, limit: number): Promise<SmsRow[]> {
    const rows = await this.db
      .selectFrom('tb_sms')
      .selectAll()
      .where('userid', '=', userid)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => smsFromRow(r as Raw));
  }

  async parts(smsid: number): Promise<SmsPart[]> {
    const rows = await this.db
      .selectFrom('tb_smsparts')
      .selectAll()
      .where('smsid', '=', smsid)
      .orderBy('part')
      .execute();
    return rows.map((r) => ({
      smsid: Number(r.smsid),
      part: Number(r.part),
      gateway: r.gateway,
      messageId: r.message_id,
      state: r.state,
    }));
  }

  /** The part a receipt names: by the SMSC's message id on that gateway (also in the other base, hex ↔ decimal). */
  async partByMessageId(gateway: string, messageId: string): Promise<SmsPart | undefined> {
    if (!messageId) return undefined;
    await this.settling.get(`${gateway}\n${messageId}`)?.catch(() => undefined);
    const ids = [messageId];
    if (/^[0-9a-f]{1,13}$/i.test(messageId)) ids.push(String(parseInt(messageId, 16)));
    if (/^\d{1,15}$/.test(messageId)) ids.push(Number(messageId).toString(16));
    const r = await this.db
      .selectFrom('tb_smsparts')
      .selectAll()
      .where('gateway', '=', gateway)
      .where('message_id', 'in', ids)
      .orderBy('smsid', 'desc')
      .executeTakeFirst();
    return r
      ? { smsid: Number(r.smsid), part: Number(r.part), gateway: r.gateway, messageId: r.message_id, state: r.state }
      : undefined;
  }

  async setPartStateIn(trx: Transaction<Database>, smsid: number, part: number, state: string): Promise<void> {
    await trx
      .updateTable('tb_smsparts')
      .set({ state, updated_at: Date.now() })
      .where('smsid', '=', smsid)
      .where('part', '=', part)
      .execute();
  }
}
