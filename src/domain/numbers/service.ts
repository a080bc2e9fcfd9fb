/**
 * Numbers and features: the DID pool, caller numbers (ANI), callback numbers, forwarding rules, conference rooms.
 *
 * Pool rows (tb_numbers) are `free`, `locked` (reserved for `userid` until `locked_until`, epoch ms) or
 * `assigned` (to `userid`). A lock whose time has passed counts as free. Every hand-out is a conditional
 * UPDATE that must change exactly one row (retried on a lost race), so two callers never get the same number
 * on SQLite or PostgreSQL.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';

/** Bad input or a refused operation; the text says what was wrong (answered as ERROR). */
export class NumberError extends Error {
  constructor(
    message: string,
    readonly legacyStatus = 412,
  ) {
    super(message);
  }
}

export type PoolStatus = 'free' | 'locked' | 'assigned';

export interface PoolNumber {
  number: string;
  /** Effective status (a lock that has expired reads as free). */
  status: PoolStatus;
  userid: number;
  username: string;
  lockedUntil: number | null;
  createdAt: number;
}

export interface OwnedNumber {
  number: string;
  createdAt: number;
}

export type ForwardTarget = { kind: 'user'; username: string; userId: number } | { kind: 'number'; number: string };

/** The forwarding rules of one user as the SIP core applies them (null: no rule). */
export interface ForwardRules {
  always: ForwardTarget | null;
  busy: ForwardTarget | null;
  noanswer: ForwardTarget | null;
}

/** The stored rule values ('' = none). */
export interface ForwardSettings {
  always: string;
  busy: string;
  noanswer: string;
}

export type ForwardKind = keyof ForwardSettings;

export const MAX_RANGE = 10_000;
export const MAX_CALLBACK_NUMBERS = 10;
export const MAX_CLI_NUMBERS = 100;
const NUMBER_RE = /^[0-9]{2,20}$/;
const CLAIM_ROUNDS = 50;
const CANDIDATES = 128;
const TRIES_PER_ROUND = 8;

/** Normalises a phone number: spaces and dashes removed, a leading + dropped; undefined when it is not 2-20 digits. */
export function normalizeNumber(raw: string): string | undefined {
  const s = raw.trim().replace(/[\s-]/g, '');
  const digits = s.startsWith('+') ? s.slice(1) : s;
  return NUMBER_RE.test(digits) ? digits : undefined;
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /unique|duplicate/i.test(String(err?.message ?? ''));
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface NumberServiceOptions {
  /** Clock (epoch ms); tests inject one to move lock expiry without sleeping. */
  now?: () => number;
}

export class NumberService {
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
      const n = normalizeNumber(item);
      if (!n)
        throw new NumberError(
          `numbers: "${item.slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        );
      push(n);
    }
    const hasFrom = from !== undefined && from.trim() !== '';
    const hasCount = count !== undefined && count.trim() !== '';
    if (hasFrom !== hasCount) throw new NumberError('a range needs both from (the first number) and count');
    if (hasFrom) {
      const start = normalizeNumber(from!);
      if (!start)
        throw new NumberError(`from: "${from!.slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`);
      if (!/^\d{1,5}$/.test(count!.trim()) || Number(count) < 1 || Number(count) > MAX_RANGE) {
        throw new NumberError(`count: expected 1-${MAX_RANGE}`);
      }
      const n = Number(count);
      let v = BigInt(start);
      for (let i = 0; i < n; i++, v++) {
        const s = v.toString().padStart(start.length, '0');
        if (s.length > 20) throw new NumberError(`the range from ${start} with count ${n} runs past 20 digits`);
        push(s);
      }
    }
    if (!out.length) throw new NumberError('no numbers given: send numbers=N1,N2,… or from=FIRST&count=N');
    if (out.length > MAX_RANGE)
      throw new NumberError(`too many numbers (${out.length}): at most ${MAX_RANGE} per request`);
    return out;
  }

  /** Adds numbers to the pool as free; numbers already in the pool are left as they are. One transaction. */
  async addNumbers(numbers: string[]): Promise<{ added: number; skipped: number }> {
    if (numbers.length > MAX_RANGE)
      throw new NumberError(`too many numbers (${numbers.length}): at most ${MAX_RANGE} per request`);
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
    const number = normalizeNumber(raw ?? '');
    if (!number)
      throw new NumberError(
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
    if (!row) throw new NumberError(`number ${number} is not in the pool`, 404);
    throw new NumberError(
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
    throw new NumberError('the number pool is busy, try again');
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
    if (!number) throw new NumberError('no free phone number in the pool');
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
      number = normalizeNumber(wanted);
      if (!number)
        throw new NumberError(
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
        if (!row) throw new NumberError(`number ${number} is not in the pool`, 404);
        if (row.status === 'assigned')
          throw new NumberError(
            Number(row.userid) === userId
              ? `number ${number} is already assigned to you`
              : `number ${number} is already assigned to another user`,
          );
        throw new NumberError(`number ${number} is reserved by another user; try again later or lock another number`);
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
      if (!number) throw new NumberError('no free phone number in the pool');
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

  // ------------------------------------------------------------------ caller numbers (ANI)

  private static number(raw: string | undefined, what: string): string {
    const n = normalizeNumber(raw ?? '');
    if (!n)
      throw new NumberError(
        `${what}: "${String(raw ?? '').slice(0, 40)}" is not a phone number (2-20 digits, optional leading +)`,
        421,
      );
    return n;
  }

  /** Adds a pin-less caller number; unique across all accounts. `added` false when the user already had it. */
  async addCli(userId: number, raw: string | undefined): Promise<{ number: string; added: boolean }> {
    const number = NumberService.number(raw, 'anum');
    const owner = async () =>
      this.db.selectFrom('tb_cli').select('userid').where('number', '=', number).executeTakeFirst();
    const refuse = (o: { userid: number } | undefined): { number: string; added: boolean } | undefined => {
      if (!o) return undefined;
      if (Number(o.userid) === userId) return { number, added: false };
      throw new NumberError(`number ${number} is already registered as a caller number of another account`);
    };
    const before = refuse(await owner());
    if (before) return before;
    const n = await this.db
      .selectFrom('tb_cli')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('userid', '=', userId)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= MAX_CLI_NUMBERS)
      throw new NumberError(`at most ${MAX_CLI_NUMBERS} caller numbers per account: delete one first (del=1)`);
    try {
      await this.db.insertInto('tb_cli').values({ userid: userId, number, created_at: this.now() }).execute();
      return { number, added: true };
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      const after = refuse(await owner()); // lost a race
      if (after) return after;
      throw e;
    }
  }

  async listCli(userId: number): Promise<OwnedNumber[]> {
    const rows = await this.db
      .selectFrom('tb_cli')
      .select(['number', 'created_at'])
      .where('userid', '=', userId)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ number: r.number, createdAt: Number(r.created_at) }));
  }

  async deleteCli(userId: number, raw: string | undefined): Promise<string> {
    const number = NumberService.number(raw, 'anum');
    const r = await this.db
      .deleteFrom('tb_cli')
      .where('userid', '=', userId)
      .where('number', '=', number)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1)
      throw new NumberError(`number ${number} is not a caller number of this account`, 404);
    return number;
  }

  /** The account whose pin-less caller number this is (for the SIP core / callback). */
  async cliOwner(raw: string): Promise<number | undefined> {
    const number = normalizeNumber(raw);
    if (!number) return undefined;
    const r = await this.db.selectFrom('tb_cli').select('userid').where('number', '=', number).executeTakeFirst();
    return r ? Number(r.userid) : undefined;
  }

  // ------------------------------------------------------------------ callback numbers

  /** Adds a custom callback number (per user, at most MAX_CALLBACK_NUMBERS, no duplicates). */
  async addCallbackNumber(userId: number, raw: string | undefined): Promise<string> {
    const number = NumberService.number(raw, 'anum');
    const dup = () => new NumberError(`number ${number} is already one of your callback numbers`);
    const has = await this.db
      .selectFrom('tb_callbacknumbers')
      .select('id')
      .where('userid', '=', userId)
      .where('number', '=', number)
      .executeTakeFirst();
    if (has) throw dup();
    try {
      // insert only while the user has fewer than the maximum: one statement, so concurrent adds cannot overshoot on SQLite
      const r = await this.db
        .insertInto('tb_callbacknumbers')
        .columns(['userid', 'number', 'created_at'])
        .expression(
          this.db
            .selectNoFrom((eb) => [
              eb.cast<number>(eb.val(userId), 'integer').as('userid'),
              eb.cast<string>(eb.val(number), 'varchar(64)').as('number'),
              eb.cast<number>(eb.val(this.now()), 'bigint').as('created_at'),
            ])
            .where(
              this.db
                .selectFrom('tb_callbacknumbers')
                .select((e) => e.fn.countAll().as('n'))
                .where('userid', '=', userId),
              '<',
              MAX_CALLBACK_NUMBERS,
            ),
        )
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) {
        throw new NumberError(`at most ${MAX_CALLBACK_NUMBERS} callback numbers per user: delete one first (del=1)`);
      }
      return number;
    } catch (e) {
      if (isUniqueViolation(e)) throw dup();
      throw e;
    }
  }

  async listCallbackNumbers(userId: number): Promise<OwnedNumber[]> {
    const rows = await this.db
      .selectFrom('tb_callbacknumbers')
      .select(['number', 'created_at'])
      .where('userid', '=', userId)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ number: r.number, createdAt: Number(r.created_at) }));
  }

  async deleteCallbackNumber(userId: number, raw: string | undefined): Promise<string> {
    const number = NumberService.number(raw, 'anum');
    const r = await this.db
      .deleteFrom('tb_callbacknumbers')
      .where('userid', '=', userId)
      .where('number', '=', number)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1)
      throw new NumberError(`number ${number} is not one of this user's callback numbers`, 404);
    return number;
  }

  // ------------------------------------------------------------------ call forwarding

  async getForward(userId: number): Promise<ForwardSettings> {
    const r = await this.db
      .selectFrom('tb_callforward')
      .select(['always', 'busy', 'noanswer'])
      .where('userid', '=', userId)
      .executeTakeFirst();
    return { always: r?.always ?? '', busy: r?.busy ?? '', noanswer: r?.noanswer ?? '' };
  }

  /**
   * Validates one rule target: '' or 'off' clears; an existing username (not the user); else a phone number
   * (normalised to digits) that is not one of the user's own numbers.
   */
  async validateForwardTarget(userId: number, kind: ForwardKind, raw: string): Promise<string> {
    const v = raw.trim();
    if (v === '' || v.toLowerCase() === 'off') return '';
    if (v.length > 64) throw new NumberError(`${kind}: at most 64 characters`);
    const self = `${kind}: a rule may not forward to the user themselves`;
    const u = await this.db
      .selectFrom('tb_users')
      .select(['id', 'username'])
      .where('username', '=', v)
      .executeTakeFirst();
    if (u) {
      if (Number(u.id) === userId) throw new NumberError(self);
      return u.username;
    }
    const number = normalizeNumber(v);
    if (!number)
      throw new NumberError(
        `${kind}: "${v.slice(0, 40)}" is neither a phone number (digits with an optional leading +) nor an existing username`,
      );
    const me = await this.db
      .selectFrom('tb_users')
      .select(['username', 'did'])
      .where('id', '=', userId)
      .executeTakeFirst();
    const own = new Set<string>(
      (await this.assignedNumbers(userId)).concat(me?.did ? [normalizeNumber(me.did) ?? me.did] : []),
    );
    if (me?.username === number || own.has(number)) throw new NumberError(self);
    return number;
  }

  /** Changes the given rules (others stay); returns the rules now stored. */
  async setForward(userId: number, changes: Partial<ForwardSettings>): Promise<ForwardSettings> {
    const next: Partial<ForwardSettings> = {};
    for (const k of ['always', 'busy', 'noanswer'] as const) {
      const v = changes[k];
      if (v !== undefined) next[k] = await this.validateForwardTarget(userId, k, v);
    }
    const cur = await this.getForward(userId);
    const row = { ...cur, ...next };
    await this.db
      .insertInto('tb_callforward')
      .values({ userid: userId, ...row, updated_at: this.now() })
      .onConflict((oc) => oc.column('userid').doUpdateSet({ ...next, updated_at: this.now() }))
      .execute();
    return this.getForward(userId);
  }

  /** The forwarding rules of a user resolved for the SIP core (a stored username that no longer exists is dropped). */
  async forwardRules(userId: number): Promise<ForwardRules> {
    const s = await this.getForward(userId);
    const resolve = async (v: string): Promise<ForwardTarget | null> => {
      if (!v) return null;
      const u = await this.db
        .selectFrom('tb_users')
        .select(['id', 'username'])
        .where('username', '=', v)
        .executeTakeFirst();
      if (u) return Number(u.id) === userId ? null : { kind: 'user', username: u.username, userId: Number(u.id) };
      return NUMBER_RE.test(v) ? { kind: 'number', number: v } : null;
    };
    return { always: await resolve(s.always), busy: await resolve(s.busy), noanswer: await resolve(s.noanswer) };
  }

  // ------------------------------------------------------------------ conference rooms

  /** The user's conference room: the existing one, else the first free number from `confroomfirst`. */
  async getConfRoom(userId: number): Promise<{ room: string; created: boolean }> {
    const mine = async () =>
      this.db.selectFrom('tb_confrooms').select('room').where('userid', '=', userId).executeTakeFirst();
    const have = await mine();
    if (have) return { room: have.room, created: false };
    const first = this.config.get('confroomfirst');
    const skip = new Set<number>();
    for (let attempt = 0; attempt < 50; attempt++) {
      const taken = new Set<number>(skip);
      for (const r of await this.db.selectFrom('tb_confrooms').select('room').execute()) {
        if (/^\d+$/.test(r.room)) taken.add(Number(r.room));
      }
      let n = first;
      while (taken.has(n)) n++;
      const room = String(n);
      try {
        await this.db.insertInto('tb_confrooms').values({ userid: userId, room, created_at: this.now() }).execute();
        return { room, created: true };
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        const now = await mine(); // a parallel request of the same user won
        if (now) return { room: now.room, created: false };
        skip.add(n); // the room went to someone else: next one
      }
    }
    throw new NumberError('could not allocate a conference room (busy), try again');
  }
}
