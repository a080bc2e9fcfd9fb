/**
 * The DID pool (tb_numbers). Rows are `free`, `locked` (reserved for `userid` until `locked_until`, epoch ms) or
 * `assigned` (to `userid`). A lock whose time has passed counts as free. Every hand-out is a conditional
 * UPDATE that must change exactly one row (retried on a lost race), so two callers never get the same number
 * on SQLite or PostgreSQL.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';
import {
  NumberServiceError,
  phoneDigits,
  isUniqueViolation,
  MAX_RANGE,
  type NumberServiceOptions,
  type PoolNumber,
  type PoolStatus,
} from './common.js';

const CLAIM_ROUNDS = 50;
const CANDIDATES = 128;
const TRIES_PER_ROUND = 8;

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export class NumberPool {
  /** The clock used for locks and timestamps (replaceable). */
  now: () => number;

  constructor(
    readonly db: Kysely<Database>,
    readonly config: ConfigStore,
    opts: NumberServiceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  // ------------------------------------------------------------------ DID pool

  /**
   * Parses an addnumbers request: a comma/space/semicolon separated list and/or a range `from` + `count`
   * of consecutive numbers (leading zeros kept). At most MAX_RANGE numbers in all.
   */
  static parseNumberList(list: string | undefined, from?: string, count?: string): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    const push = (n: string) => {
      if (!seen.has(n)) {
        seen.add(n);
        out.push(n);
      }
    };
    for (const item of (list ?? '').split(/[\s,;]+/).filter(Boolean)) {
      const n = phoneDigits(item);
      if (!n)
        throw new NumberServiceError(
          `numbers: "${item.slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        );
      push(n);
    }
    const hasFrom = from !== undefined && from.trim() !== '';
    const hasCount = count !== undefined && count.trim() !== '';
    if (hasFrom !== hasCount) throw new NumberServiceError('a range needs both from (the first number) and count');
    if (hasFrom) {
      const start = phoneDigits(from!);
      if (!start)
        throw new NumberServiceError(
          `from: "${from!.slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        );
      if (!/^\d{1,5}$/.test(count!.trim()) || Number(count) < 1 || Number(count) > MAX_RANGE) {
        throw new NumberServiceError(`count: expected 1-${MAX_RANGE}`);
      }
      const n = Number(count);
      let v = BigInt(start);
      for (let i = 0; i < n; i++, v++) {
        const s = v.toString().padStart(start.length, '0');
        if (s.length > 20) throw new NumberServiceError(`the range from ${start} with count ${n} runs past 20 digits`);
        push(s);
      }
    }
    if (!out.length) throw new NumberServiceError('no numbers given: send numbers=N1,N2,… or from=FIRST&count=N');
    if (out.length > MAX_RANGE)
      throw new NumberServiceError(`too many numbers (${out.length}): at most ${MAX_RANGE} per request`);
    return out;
  }

  /** Adds numbers to the pool as free; numbers already in the pool are left as they are. One transaction. */
  async addNumbers(numbers: string[]): Promise<{ added: number; skipped: number }> {
    if (numbers.length > MAX_RANGE)
      throw new NumberServiceError(`too many numbers (${numbers.length}): at most ${MAX_RANGE} per request`);
    const at = this.now();
    let added = 0;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < numbers.length; i += 500) {
        const chunk = numbers.slice(i, i + 500);
        const r = await trx
          .insertInto('tb_numbers')
          .values(chunk.map((number) => ({ number, userid: 0, status: 'free', locked_until: null, created_at: at })))
          .onConflict((oc) => oc.column('number').doNothing())
          .executeTakeFirst();
        added += Number(r.numInsertedOrUpdatedRows ?? 0n);
      }
    });
    return { added, skipped: numbers.length - added };
  }

  /** Removes a free number (an expired lock counts as free) from the pool. */
  async deleteNumber(raw: string): Promise<string> {
    const number = phoneDigits(raw ?? '');
    if (!number)
      throw new NumberServiceError(
        `number: "${String(raw ?? '').slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
      );
    const r = await this.db
      .deleteFrom('tb_numbers')
      .where('number', '=', number)
      .where((eb) => this.claimable(eb))
      .executeTakeFirst();
    if (Number(r.numDeletedRows) === 1) return number;
    const row = await this.db
      .selectFrom('tb_numbers')
      .select(['status', 'userid'])
      .where('number', '=', number)
      .executeTakeFirst();
    if (!row) throw new NumberServiceError(`number ${number} is not in the pool`, 404);
    throw new NumberServiceError(
      `number ${number} is ${row.status} (user id ${row.userid}); only free numbers can be deleted`,
    );
  }

  /** The pool with effective statuses, by number. */
  async listNumbers(): Promise<PoolNumber[]> {
    const now = this.now();
    const rows = await this.db
      .selectFrom('tb_numbers as n')
      .leftJoin('tb_users as u', 'u.id', 'n.userid')
      .select(['n.number', 'n.status', 'n.userid', 'n.locked_until', 'n.created_at', 'u.username'])
      .orderBy('n.number')
      .execute();
    return rows.map((r) => {
      const expired = r.status === 'locked' && (r.locked_until == null || Number(r.locked_until) <= now);
      return {
        number: r.number,
        status: (expired ? 'free' : r.status) as PoolStatus,
        userid: expired ? 0 : Number(r.userid),
        username: expired ? '' : (r.username ?? ''),
        lockedUntil: expired || r.locked_until == null ? null : Number(r.locked_until),
        createdAt: Number(r.created_at),
      };
    });
  }

  /**
   * Assigns a pool number to a user by hand (the admin's choice, where getphonenumber picks one): the number must be
   * free (or its lock run out). Sets tb_users.did when the user has none.
   */
  async assignNumber(raw: string, userId: number): Promise<{ number: string; didSet: boolean }> {
    const number = this.poolDigits(raw);
    const r = await this.db
      .updateTable('tb_numbers')
      .set({ status: 'assigned', userid: userId, locked_until: null })
      .where('number', '=', number)
      .where((eb) => this.claimable(eb))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      const row = await this.db
        .selectFrom('tb_numbers')
        .select(['status', 'userid'])
        .where('number', '=', number)
        .executeTakeFirst();
      if (!row) throw new NumberServiceError(`number ${number} is not in the pool`, 404);
      throw new NumberServiceError(
        `number ${number} is ${row.status} (user id ${row.userid}); free it first (freenumber)`,
      );
    }
    return { number, didSet: await this.setUserDidIfNone(userId, number) };
  }

  /**
   * Puts an assigned or locked number back into the free pool; the user's tb_users.did is cleared when it was this
   * number (one transaction). Answers the user it belonged to.
   */
  async freeNumber(raw: string): Promise<{ number: string; userid: number; didCleared: boolean }> {
    const number = this.poolDigits(raw);
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('tb_numbers')
        .select(['id', 'status', 'userid'])
        .where('number', '=', number)
        .executeTakeFirst();
      if (!row) throw new NumberServiceError(`number ${number} is not in the pool`, 404);
      if (row.status === 'free') throw new NumberServiceError(`number ${number} is already free`);
      const userid = Number(row.userid);
      const r = await trx
        .updateTable('tb_numbers')
        .set({ status: 'free', userid: 0, locked_until: null })
        .where('id', '=', row.id)
        .where('status', '=', row.status)
        .where('userid', '=', userid)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new NumberServiceError(`number ${number} changed meanwhile, try again`);
      const d = await trx
        .updateTable('tb_users')
        .set({ did: null })
        .where('id', '=', userid)
        .where('did', '=', number)
        .executeTakeFirst();
      return { number, userid, didCleared: Number(d.numUpdatedRows) === 1 };
    });
  }

  /** The pool's row of a number (its status and user id, as stored); undefined when it is not in the pool. */
  async poolRow(raw: string): Promise<{ number: string; status: string; userid: number } | undefined> {
    const number = this.poolDigits(raw);
    const row = await this.db
      .selectFrom('tb_numbers')
      .select(['number', 'status', 'userid'])
      .where('number', '=', number)
      .executeTakeFirst();
    return row ? { number: row.number, status: row.status, userid: Number(row.userid) } : undefined;
  }

  private poolDigits(raw: string): string {
    const number = phoneDigits(raw ?? '');
    if (!number)
      throw new NumberServiceError(
        `number: "${String(raw ?? '').slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        421,
      );
    return number;
  }

  /** Rows another caller may take: free, or locked with the lock run out. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private claimable(eb: any, now = this.now()) {
    return eb.or([
      eb('status', '=', 'free'),
      eb.and([eb('status', '=', 'locked'), eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)])]),
    ]);
  }

  /**
   * Takes one claimable number for `userId`, setting `values` with a conditional UPDATE that must change
   * exactly one row; lost races are retried on other candidates. Undefined when the pool has none.
   */
  private async claim(
    userId: number,
    status: 'locked' | 'assigned',
    lockedUntil: number | null,
  ): Promise<string | undefined> {
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const now = this.now();
      const cands = await this.db
        .selectFrom('tb_numbers')
        .select(['id', 'number'])
        .where((eb) => this.claimable(eb, now))
        .orderBy('id')
        .limit(CANDIDATES)
        .execute();
      if (!cands.length) return undefined;
      for (const c of shuffle(cands).slice(0, TRIES_PER_ROUND)) {
        const r = await this.db
          .updateTable('tb_numbers')
          .set({ status, userid: userId, locked_until: lockedUntil })
          .where('id', '=', c.id)
          .where((eb) => this.claimable(eb, now))
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) return c.number;
      }
    }
    throw new NumberServiceError('the number pool is busy, try again');
  }

  /** Numbers assigned to a user, oldest first. */
  async assignedNumbers(userId: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('tb_numbers')
      .select('number')
      .where('userid', '=', userId)
      .where('status', '=', 'assigned')
      .orderBy('id')
      .execute();
    return rows.map((r) => r.number);
  }

  /**
   * getphonenumber: the number the user locked, else (unless `fresh`) the number already assigned to them,
   * else a free number from the pool; assigned to the user. Sets tb_users.did when the user has none.
   */
  async getPhoneNumber(
    userId: number,
    fresh = false,
  ): Promise<{ number: string; source: 'lock' | 'existing' | 'pool'; didSet: boolean }> {
    // the user's own reservation (even if its time ran out, as long as nobody else took it)
    const mine = await this.db
      .selectFrom('tb_numbers')
      .select(['id', 'number'])
      .where('userid', '=', userId)
      .where('status', '=', 'locked')
      .orderBy('id')
      .execute();
    for (const m of mine) {
      const r = await this.db
        .updateTable('tb_numbers')
        .set({ status: 'assigned', locked_until: null })
        .where('id', '=', m.id)
        .where('userid', '=', userId)
        .where('status', '=', 'locked')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1)
        return { number: m.number, source: 'lock', didSet: await this.setUserDidIfNone(userId, m.number) };
    }
    if (!fresh) {
      const existing = (await this.assignedNumbers(userId))[0];
      if (existing)
        return { number: existing, source: 'existing', didSet: await this.setUserDidIfNone(userId, existing) };
    }
    const number = await this.claim(userId, 'assigned', null);
    if (!number) throw new NumberServiceError('no free phone number in the pool');
    return { number, source: 'pool', didSet: await this.setUserDidIfNone(userId, number) };
  }

  /**
   * lockphonenumber: reserves a free number (or `wanted`) for `numberlocktime` seconds. A user holds one
   * reservation: locking again renews it (or moves it to `wanted`, releasing the previous one).
   */
  async lockPhoneNumber(userId: number, wanted?: string): Promise<{ number: string; lockedUntil: number }> {
    const now = this.now();
    const until = now + this.config.get('numberlocktime') * 1000;
    let number: string | undefined;
    if (wanted !== undefined && wanted.trim() !== '') {
      number = phoneDigits(wanted);
      if (!number)
        throw new NumberServiceError(
          `number: "${wanted.slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        );
      const r = await this.db
        .updateTable('tb_numbers')
        .set({ status: 'locked', userid: userId, locked_until: until })
        .where('number', '=', number)
        .where((eb) =>
          eb.or([this.claimable(eb, now), eb.and([eb('status', '=', 'locked'), eb('userid', '=', userId)])]),
        )
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) {
        const row = await this.db
          .selectFrom('tb_numbers')
          .select(['status', 'userid'])
          .where('number', '=', number)
          .executeTakeFirst();
        if (!row) throw new NumberServiceError(`number ${number} is not in the pool`, 404);
        if (row.status === 'assigned')
          throw new NumberServiceError(
            Number(row.userid) === userId
              ? `number ${number} is already assigned to you`
              : `number ${number} is already assigned to another user`,
          );
        throw new NumberServiceError(
          `number ${number} is reserved by another user; try again later or lock another number`,
        );
      }
    } else {
      const current = await this.db
        .selectFrom('tb_numbers')
        .select(['id', 'number'])
        .where('userid', '=', userId)
        .where('status', '=', 'locked')
        .orderBy('id')
        .executeTakeFirst();
      if (current) {
        const r = await this.db
          .updateTable('tb_numbers')
          .set({ locked_until: until })
          .where('id', '=', current.id)
          .where('userid', '=', userId)
          .where('status', '=', 'locked')
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) number = current.number;
      }
      number ??= await this.claim(userId, 'locked', until);
      if (!number) throw new NumberServiceError('no free phone number in the pool');
    }
    // one reservation per user: release any other
    await this.db
      .updateTable('tb_numbers')
      .set({ status: 'free', userid: 0, locked_until: null })
      .where('userid', '=', userId)
      .where('status', '=', 'locked')
      .where('number', '!=', number)
      .execute();
    return { number, lockedUntil: until };
  }

  /** Sets tb_users.did to `number` when the user has none; false when they have one or another user holds it. */
  async setUserDidIfNone(userId: number, number: string): Promise<boolean> {
    try {
      const r = await this.db
        .updateTable('tb_users')
        .set({ did: number })
        .where('id', '=', userId)
        .where((eb) => eb.or([eb('did', 'is', null), eb('did', '=', '')]))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    } catch (e) {
      if (isUniqueViolation(e)) return false; // another account has this DID set by hand
      throw e;
    }
  }
}
