/**
 * Mobile-originated SMS to a user (to their DID or a number assigned to them), billed as SMS: the receiver pays the
 * `connectfee` of the row of their own tariff plan that the sender's number matches, per part (`smsmocharge`; an
 * alphanumeric or unrated sender is free), charged once through the ledger (reason `smsmo`, ref `smsmo:<id>`) in
 * the transaction that writes its tb_smsmo row, before it is delivered. A receiver who cannot pay gets it free
 * (`smsmonocredit=deliver`, logged) or the SMSC gets ESME_RX_P_APPN (`reject`). A message the user did not take
 * (no SIP stack) is refunded. deliver_sm carries no message id of the SMSC, so a redelivery (the SMSC sends it
 * again when our answer was an error or was lost) is known by its content: the same gateway, sender, number,
 * concatenation reference, parts and text within `smsmodedupe` seconds is neither charged nor delivered again (a
 * copy of one whose delivery failed is delivered, still not charged again). Copies racing each other, in this
 * process or in others, are serialised: one is charged and delivered, the others find its row.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Dialect } from '../../../storage/dialect.js';
import type { ConfigStore } from '../../../config/store.js';
import { InsufficientCredit, type Ledger } from '../../billing/ledger.js';
import { formatAmount } from '../../billing/amount.js';
import { isRatingError, type RatingService } from '../../rating/service.js';
import type { User } from '../../accounts/users.js';
import type { MobileOriginated } from './inbound.js';
import { ESME_RX_P_APPN, InboundRefused } from './transport.js';

/** Where mobile-originated messages go; wired by the composition root. */
export interface MoHandler {
  /** The account a number belongs to (DID, phone or assigned number), if any. */
  recipient(to: string): Promise<User | undefined>;
  /**
   * Delivers to the user (a SIP MESSAGE, or the offline IM store) or, without one, runs the API over SMS;
   * answers whether it was taken. A throw leaves the message to the SMSC's redelivery.
   */
  deliver(m: MobileOriginated, user: User | undefined): Promise<boolean>;
}

export interface MoOutcome {
  taken: boolean;
  /** micro-units charged to the receiver */
  cost: number;
  /** the tb_smsmo row (0: not a user's message) */
  id: number;
  /** a copy of a message already handled */
  redelivery: boolean;
}

export interface MoDeps {
  dialect: Dialect;
  config: ConfigStore;
  ledger: Ledger;
  rating: RatingService;
  log: Logger;
}

interface MoRow {
  id: number;
  cost: number;
  state: string;
  updatedAt: number;
}

/** A row `delivering` for longer than this was left by a process that stopped: a copy may deliver it. */
const STALE_MS = 60_000;

export function dedupeKey(m: MobileOriginated): string {
  const parts = [m.gateway, m.from, m.to, m.ref ?? '', m.parts, m.text];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class MoCharges {
  /** messages being handled in this process, by dedupe key: a copy arriving meanwhile waits for the first */
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly d: MoDeps) {}

  async handle(m: MobileOriginated, h: MoHandler): Promise<MoOutcome> {
    const user = await h.recipient(m.to);
    if (!user) return { taken: await h.deliver(m, undefined), cost: 0, id: 0, redelivery: false };
    if (!user.enabled) {
      this.d.log.info({ user: user.id, from: m.from, to: m.to }, 'incoming SMS to a disabled account: not delivered');
      return { taken: false, cost: 0, id: 0, redelivery: false };
    }
    const key = dedupeKey(m);
    const prev = this.inflight.get(key);
    const run = (prev ?? Promise.resolve()).catch(() => undefined).then(() => this.once(m, user, key, h));
    this.inflight.set(key, run);
    try {
      return await run;
    } finally {
      if (this.inflight.get(key) === run) this.inflight.delete(key);
    }
  }

  private async once(m: MobileOriginated, user: User, key: string, h: MoHandler): Promise<MoOutcome> {
    const o = this.d.config.options;
    const now = Date.now();
    const price = await this.price(user, m);
    // a new row is claimed for its delivery at once (delivering)
    const row = {
      gateway: m.gateway.slice(0, 64),
      dedupe: key,
      userid: user.id,
      sender: m.from.slice(0, 32),
      destination: m.to.slice(0, 32),
      parts: m.parts,
      state: 'delivering',
      created_at: now,
      updated_at: now,
    };
    // the look-up for an earlier copy and the new row (with its charge) in one transaction, serialised per key:
    // on PostgreSQL by an advisory lock on the key (other processes, other nodes), on SQLite by its one writer
    const record = (v: { cost: number; state?: string; note: string }) =>
      this.d.ledger.transaction(async (trx): Promise<{ id: number; seen?: MoRow }> => {
        if (this.d.dialect === 'pg') {
          const lock = BigInt.asIntN(64, BigInt(`0x${key.slice(0, 16)}`)).toString();
          await sql`select pg_advisory_xact_lock(cast(${lock} as bigint))`.execute(trx);
        }
        if (o.smsmodedupe > 0) {
          const seen = await trx
            .selectFrom('tb_smsmo')
            .select(['id', 'cost', 'state', 'updated_at'])
            .where('dedupe', '=', key)
            .where('created_at', '>', now - o.smsmodedupe * 1000)
            .where('state', '!=', 'rejected')
            .orderBy('id', 'desc')
            .executeTakeFirst();
          if (seen) {
            const { id, cost, state, updated_at } = seen;
            return { id: 0, seen: { id: Number(id), cost: Number(cost), state, updatedAt: Number(updated_at) } };
          }
        }
        const ins = await trx
          .insertInto('tb_smsmo')
          .values({ ...row, ...v, note: v.note.slice(0, 256) })
          .returning('id')
          .executeTakeFirstOrThrow();
        const id = Number(ins.id);
        if (v.cost > 0)
          await this.d.ledger.postIn(trx, { userId: user.id, amount: -v.cost, reason: 'smsmo', ref: `smsmo:${id}` });
        return { id };
      });
    const line = { user: user.id, from: m.from, to: m.to, parts: m.parts, gateway: m.gateway };
    let r: { id: number; seen?: MoRow };
    let cost = price.cost;
    try {
      r = await record({ cost, note: price.note });
    } catch (e) {
      if (!(e instanceof InsufficientCredit)) throw e;
      const bal = (await this.d.ledger.balance(user.id))?.credit ?? 0;
      const free = Math.max(0, bal - (await this.d.ledger.reserved(user.id)));
      const why =
        `insufficient credit: the incoming SMS costs ${formatAmount(cost)} ${price.currency} ` +
        `(${m.parts} part(s)), ${formatAmount(free)} available`;
      cost = 0;
      const reject = o.smsmonocredit === 'reject';
      r = await record(reject ? { cost, state: 'rejected', note: why } : { cost, note: `delivered free: ${why}` });
      if (!r.seen && reject) {
        this.d.log.warn({ ...line, smsmo: r.id, why }, 'incoming SMS rejected: the receiver cannot pay it');
        throw new InboundRefused(why, ESME_RX_P_APPN);
      }
      if (!r.seen)
        this.d.log.warn({ ...line, smsmo: r.id, why }, 'incoming SMS delivered free: the receiver cannot pay it');
    }
    if (r.seen) return this.again(r.seen, m, user, h);
    if (cost > 0) this.d.log.info({ ...line, smsmo: r.id, cost }, 'incoming SMS charged');
    else if (price.note) this.d.log.info({ ...line, smsmo: r.id, why: price.note }, 'incoming SMS not charged');
    return this.deliver({ id: r.id, cost, state: 'delivering', updatedAt: now }, m, user, h, false);
  }

  /**
   * A copy of a message already recorded: delivered only if no delivery happened and none is running (a row left
   * `accepted` by a failed delivery, or `delivering` for longer than STALE_MS by a process that stopped), claimed
   * by one conditional UPDATE so that two processes never both deliver it.
   */
  private async again(r: MoRow, m: MobileOriginated, user: User, h: MoHandler): Promise<MoOutcome> {
    const line = { smsmo: r.id, user: user.id, from: m.from, to: m.to, state: r.state };
    const stale = r.state === 'delivering' && Date.now() - r.updatedAt > STALE_MS;
    if (r.state === 'accepted' || stale) {
      const claimed = await this.d.ledger.transaction((trx) =>
        trx
          .updateTable('tb_smsmo')
          .set({ state: 'delivering', updated_at: Date.now() })
          .where('id', '=', r.id)
          .where('state', '=', r.state)
          .where('updated_at', '=', r.updatedAt)
          .executeTakeFirst(),
      );
      if (Number(claimed.numUpdatedRows) === 1) {
        this.d.log.info(line, 'incoming SMS delivered again by the SMSC: delivering it, not charged again');
        return this.deliver(r, m, user, h, true);
      }
    }
    this.d.log.info(line, 'incoming SMS delivered again by the SMSC: already handled, not charged or delivered again');
    return { taken: r.state === 'delivered', cost: 0, id: r.id, redelivery: true };
  }

  /**
   * Delivers a row this handler claimed (`delivering`): then delivered, or undelivered and refunded; after a throw
   * it is `accepted` again, for the SMSC's redelivery.
   */
  private async deliver(r: MoRow, m: MobileOriginated, user: User, h: MoHandler, redelivery: boolean) {
    let taken: boolean;
    try {
      taken = await h.deliver(m, user);
    } catch (e) {
      await this.d.ledger
        .transaction((trx) =>
          trx
            .updateTable('tb_smsmo')
            .set({ state: 'accepted', updated_at: Date.now() })
            .where('id', '=', r.id)
            .where('state', '=', 'delivering')
            .execute(),
        )
        .catch((err: unknown) => this.d.log.warn({ err, smsmo: r.id }, 'incoming SMS: state not reset'));
      throw e;
    }
    const now = Date.now();
    await this.d.ledger.transaction(async (trx) => {
      const state = taken ? 'delivered' : 'undelivered';
      const changed = await trx
        .updateTable('tb_smsmo')
        .set({ state, updated_at: now })
        .where('id', '=', r.id)
        .where('state', '=', 'delivering')
        .executeTakeFirst();
      if (!taken && Number(changed.numUpdatedRows) === 1 && r.cost > 0)
        await this.d.ledger.postIn(trx, {
          userId: user.id,
          amount: r.cost,
          reason: 'smsmorefund',
          ref: `smsmo:${r.id}`,
        });
    });
    if (!taken) this.d.log.info({ smsmo: r.id, user: user.id }, 'incoming SMS not taken by the user: charge refunded');
    return { taken, cost: redelivery ? 0 : r.cost, id: r.id, redelivery };
  }

  /** The receiver's price for this message: their plan's connectfee for the sender's number, per part. */
  private async price(user: User, m: MobileOriginated): Promise<{ cost: number; currency: string; note: string }> {
    if (!this.d.config.options.smsmocharge) return { cost: 0, currency: user.currency, note: '' };
    try {
      const q = await this.d.rating.quote(user, m.from);
      if (q.rate.currency !== user.currency)
        return { cost: 0, currency: user.currency, note: `rate in ${q.rate.currency}, account in ${user.currency}` };
      return { cost: q.rate.connectfee * m.parts, currency: q.rate.currency, note: '' };
    } catch (e) {
      if (!isRatingError(e)) throw e;
      return { cost: 0, currency: user.currency, note: `not rated: ${(e as Error).message}` };
    }
  }
}
