/**
 * Call detail records: rated and charged through one code path (gencdr now, real calls later).
 *
 * recordCall() writes the tb_cdrs row and the ledger debit in ONE transaction, idempotently on (callid, leg):
 * recording the same call again charges nothing and answers the first record. The call's credit reservation
 * (tb_reservations, same callid and leg) is released in that transaction. The balance never goes below zero, nor
 * into what the account's other live calls reserved: when the call costs more than the credit left, the credit
 * left is charged, the CDR's cost is the amount actually charged and its reason says "credit exhausted (rated X)".
 * So the sum of the CDR costs of a user always equals the sum of their call debits in tb_ledger.
 * A call whose destination has no rate (or a rate in another currency than the account's) is recorded with
 * cost 0 and a reason starting "unrated:" (the SIP core must refuse such calls before they connect).
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, CdrsTable } from '../../storage/schema.js';
import { InsufficientCredit, type Ledger } from './ledger.js';
import { isRatingError, type RatingService, type Rate } from '../rating/service.js';
import { formatAmount } from './amount.js';
import { releaseForCharge } from './reservations.js';
import type { Logger } from 'pino';

export interface CallInput {
  callid: string;
  /** 'a'/'b' for two-leg calls, '' for a simple call */
  leg?: string;
  userId: number;
  /** caller id (A number or username) */
  caller: string;
  /** dialled number as dialled (normalised here for rating and stored normalised) */
  callee: string;
  route?: string;
  startAt: number;
  connectAt: number | null;
  endAt: number;
  /** answered seconds (0: unanswered) */
  duration: number;
  /** a disconnect reason to store (default "normal", or "unanswered" for 0 s) */
  reason?: string;
  /** already chosen rate (skips the look-up; the SIP core may pass the rate it authorised the call with) */
  rate?: Rate;
}

export type Cdr = Selectable<CdrsTable>;

export interface RecordedCall {
  /** false when (callid, leg) was already recorded: nothing was charged this time */
  created: boolean;
  cdr: Cdr;
  /** cost by the tariff before the credit limit */
  rated: number;
  /** amount debited now (0 for a duplicate) */
  charged: number;
  /** balance after (undefined for a duplicate) */
  balance?: number;
  rate?: Rate;
}

const isUniqueViolation = (e: unknown) => /unique|duplicate/i.test(String((e as Error)?.message));

function normCdr(r: Record<string, any>): Cdr {
  return {
    ...r,
    id: Number(r.id),
    userid: Number(r.userid),
    start_at: Number(r.start_at),
    connect_at: r.connect_at === null ? null : Number(r.connect_at),
    end_at: Number(r.end_at),
    duration: Number(r.duration),
    billed: Number(r.billed),
    cost: Number(r.cost),
    created_at: Number(r.created_at),
  } as Cdr;
}

export class CdrService {
  constructor(
    readonly db: Kysely<Database>,
    readonly ledger: Ledger,
    readonly rating: RatingService,
    /** The cdr log area: one line per recorded CDR. */
    private readonly log?: Logger,
  ) {}

  async byCallId(callid: string, leg?: string): Promise<Cdr[]> {
    let q = this.db.selectFrom('tb_cdrs').selectAll().where('callid', '=', callid);
    if (leg !== undefined) q = q.where('leg', '=', leg);
    return (await q.orderBy('leg').execute()).map(normCdr);
  }

  /** A call recorded before: nothing is charged, and a reservation it still had is released. */
  private async duplicate(cdr: Cdr, callid: string, leg: string): Promise<RecordedCall> {
    await this.db.deleteFrom('tb_reservations').where('callid', '=', callid).where('leg', '=', leg).execute();
    return { created: false, cdr, rated: cdr.cost, charged: 0 };
  }

  /** Rates and charges one call: one CDR row and one ledger debit, atomically, once per (callid, leg). */
  async recordCall(c: CallInput): Promise<RecordedCall> {
    const leg = c.leg ?? '';
    if (!c.callid || c.callid.length > 256) throw new RangeError('callid: 1-256 characters');
    if (leg.length > 16) throw new RangeError('leg: at most 16 characters');
    if (!Number.isInteger(c.duration) || c.duration < 0)
      throw new RangeError('duration: a whole non-negative number of seconds');
    const dup = await this.byCallId(c.callid, leg);
    if (dup[0]) return this.duplicate(dup[0], c.callid, leg);

    const user = await this.db
      .selectFrom('tb_users')
      .select(['id', 'country', 'currency'])
      .where('id', '=', c.userId)
      .executeTakeFirst();
    if (!user) throw new RangeError(`no such account ${c.userId}`);

    let rate = c.rate;
    let callee = c.callee;
    let unrated = '';
    if (!rate) {
      try {
        const q = await this.rating.quote({ id: c.userId, country: user.country }, c.callee, c.startAt);
        rate = q.rate;
        callee = q.number;
      } catch (e) {
        if (!isRatingError(e)) throw e;
        unrated = `unrated: ${(e as Error).message}`;
      }
    }
    if (rate && rate.currency !== user.currency) {
      unrated = `unrated: rate in ${rate.currency}, account in ${user.currency}`;
      rate = undefined;
    }
    const { billed, cost } = rate ? this.rating.rate(c.duration, rate) : { billed: 0, cost: 0 };
    const baseReason = c.reason ?? (c.duration > 0 ? 'normal' : 'unanswered');

    for (let attempt = 0; ; attempt++) {
      try {
        const recorded = await this.db.transaction().execute(async (trx) => {
          // the call's own reservations are released first: the charge may spend what the call held, never what
          // the account's other live calls hold (the database refuses a debit into their reservations)
          const held = await releaseForCharge(trx, c.callid, leg, c.userId);
          const others = held.others;
          const u = await trx
            .selectFrom('tb_users')
            .select(['credit'])
            .where('id', '=', c.userId)
            .executeTakeFirstOrThrow();
          const credit = Math.max(0, Number(u.credit));
          const charged = Math.min(cost, Math.max(0, credit - others));
          let reason = unrated || baseReason;
          if (charged < cost) reason = `credit exhausted (rated ${formatAmount(cost)})`;
          const row = await trx
            .insertInto('tb_cdrs')
            .values({
              callid: c.callid,
              caller: c.caller.slice(0, 128),
              callee: callee.slice(0, 128),
              userid: c.userId,
              route: (c.route ?? '').slice(0, 128),
              start_at: c.startAt,
              connect_at: c.connectAt,
              end_at: c.endAt,
              duration: c.duration,
              billed,
              cost: charged,
              currency: user.currency,
              reason: reason.slice(0, 128),
              leg,
              created_at: Date.now(),
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          let balance = credit;
          if (charged > 0) {
            balance = await this.ledger.postIn(trx, {
              userId: c.userId,
              amount: -charged,
              reason: 'call',
              ref: `cdr:${row.id} ${c.callid}${leg ? '/' + leg : ''}`.slice(0, 256),
            });
          }
          if (held.shared) await held.restore(balance);
          return { created: true, cdr: normCdr(row), rated: cost, charged, balance, rate };
        });
        if (this.log?.isLevelEnabled('info')) this.log.info(cdrLine(recorded.cdr), 'cdr');
        return recorded;
      } catch (e) {
        if (isUniqueViolation(e)) {
          // recorded concurrently by someone else: that record stands, nothing charged here
          const again = await this.byCallId(c.callid, leg);
          if (again[0]) return this.duplicate(again[0], c.callid, leg);
        }
        // the credit changed between the read and the debit (another writer): rate against the new credit
        if (e instanceof InsufficientCredit && attempt < 5) continue;
        throw e;
      }
    }
  }
}

function cdrLine(c: Cdr): Record<string, unknown> {
  return {
    id: c.id,
    callid: c.callid,
    leg: c.leg || undefined,
    userid: c.userid,
    caller: c.caller,
    callee: c.callee,
    route: c.route,
    start: new Date(c.start_at).toISOString(),
    duration: c.duration,
    billed: c.billed,
    cost: c.cost,
    currency: c.currency,
    reason: c.reason,
  };
}
