/**
 * Mobile-originated SMS to a user (to their DID or a number assigned to them), billed as SMS: the receiver pays the
 * `connectfee` of the row of their own tariff plan that the sender's number matches, per part (`smsmocharge`; an
 * alphanumeric or unrated sender is free), charged once through the ledger (reason `smsmo`, ref `smsmo:<id>`) in
 * the transaction that writes its tb_smsmo row, before it is delivered. A receiver who cannot pay gets it free
 * (`smsmonocredit=deliver`, logged) or the SMSC gets ESME_RX_P_APPN (`reject`). A message the user did not take
 * (no SIP stack) is refunded. deliver_sm carries no message id of the SMSC, so a redelivery (the SMSC sends it
 * again when our answer was an error or was lost) is known by its content: the same gateway, sender, number,
 * concatenation reference, parts and text within `smsmodedupe` seconds is neither charged nor delivered again (a
 * copy whose delivery failed is delivered, still not charged again).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Kysely } from 'kysely';
import type { Database } from '../../../storage/schema.js';
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
  db: Kysely<Database>;
  config: ConfigStore;
  ledger: Ledger;
  rating: RatingService;
  log: Logger;
}

interface MoRow {
  id: number;
  cost: number;
  state: string;
}

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
    if (o.smsmodedupe > 0) {
      const seen = await this.d.db
        .selectFrom('tb_smsmo')
        .select(['id', 'cost', 'state'])
        .where('dedupe', '=', key)
        .where('created_at', '>', now - o.smsmodedupe * 1000)
        .where('state', '!=', 'rejected')
        .orderBy('id', 'desc')
        .executeTakeFirst();
      if (seen) return this.again({ id: Number(seen.id), cost: Number(seen.cost), state: seen.state }, m, user, h);
    }
    const price = await this.price(user, m);
    const row = {
      gateway: m.gateway.slice(0, 64),
      dedupe: key,
      userid: user.id,
      sender: m.from.slice(0, 32),
      destination: m.to.slice(0, 32),
      parts: m.parts,
      state: 'accepted',
      created_at: now,
      updated_at: now,
    };
    const insert = (db: Kysely<Database>, v: { cost: number; state?: string; note: string }) =>
      db
        .insertInto('tb_smsmo')
        .values({ ...row, ...v, note: v.note.slice(0, 256) })
        .returning('id')
        .executeTakeFirstOrThrow()
        .then((r) => Number(r.id));
    const line = { user: user.id, from: m.from, to: m.to, parts: m.parts, gateway: m.gateway };
    let id: number;
    let cost = price.cost;
    try {
      id = await this.d.ledger.transaction(async (trx) => {
        const moid = await insert(trx, { cost, note: price.note });
        if (cost > 0)
          await this.d.ledger.postIn(trx, { userId: user.id, amount: -cost, reason: 'smsmo', ref: `smsmo:${moid}` });
        return moid;
      });
    } catch (e) {
      if (!(e instanceof InsufficientCredit)) throw e;
      const bal = (await this.d.ledger.balance(user.id))?.credit ?? 0;
      const free = Math.max(0, bal - (await this.d.ledger.reserved(user.id)));
      const why =
        `insufficient credit: the incoming SMS costs ${formatAmount(cost)} ${price.currency} ` +
        `(${m.parts} part(s)), ${formatAmount(free)} available`;
      if (o.smsmonocredit === 'reject') {
        const moid = await insert(this.d.db, { cost: 0, state: 'rejected', note: why });
        this.d.log.warn({ ...line, smsmo: moid, why }, 'incoming SMS rejected: the receiver cannot pay it');
        throw new InboundRefused(why, ESME_RX_P_APPN);
      }
      id = await insert(this.d.db, { cost: 0, note: `delivered free: ${why}` });
      this.d.log.warn({ ...line, smsmo: id, why }, 'incoming SMS delivered free: the receiver cannot pay it');
      cost = 0;
    }
    if (cost > 0) this.d.log.info({ ...line, smsmo: id, cost }, 'incoming SMS charged');
    else if (price.note) this.d.log.info({ ...line, smsmo: id, why: price.note }, 'incoming SMS not charged');
    return this.deliver({ id, cost, state: 'accepted' }, m, user, h, false);
  }

  /** A copy of a message already recorded: delivered again only if its delivery had not happened. */
  private async again(r: MoRow, m: MobileOriginated, user: User, h: MoHandler): Promise<MoOutcome> {
    const line = { smsmo: r.id, user: user.id, from: m.from, to: m.to, state: r.state };
    if (r.state === 'accepted') {
      this.d.log.info(line, 'incoming SMS delivered again by the SMSC: delivering it, not charged again');
      return this.deliver(r, m, user, h, true);
    }
    this.d.log.info(line, 'incoming SMS delivered again by the SMSC: already handled, not charged or delivered again');
    return { taken: r.state === 'delivered', cost: 0, id: r.id, redelivery: true };
  }

  private async deliver(r: MoRow, m: MobileOriginated, user: User, h: MoHandler, redelivery: boolean) {
    const taken = await h.deliver(m, user);
    const now = Date.now();
    await this.d.ledger.transaction(async (trx) => {
      const state = taken ? 'delivered' : 'undelivered';
      const changed = await trx
        .updateTable('tb_smsmo')
        .set({ state, updated_at: now })
        .where('id', '=', r.id)
        .where('state', '=', 'accepted')
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
