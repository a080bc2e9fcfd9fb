/**
 * Numbers and features: the DID pool (pool.ts) and each account's own numbers: caller numbers (ANI), callback
 * numbers, forwarding rules and conference rooms.
 */
import { NumberPool } from './pool.js';
import {
  NumberServiceError,
  phoneDigits,
  isUniqueViolation,
  MAX_CALLBACK_NUMBERS,
  MAX_CLI_NUMBERS,
  NUMBER_RE,
  type ForwardKind,
  type ForwardRules,
  type ForwardSettings,
  type ForwardTarget,
  type OwnedNumber,
} from './common.js';

export * from './common.js';

/** The pool (NumberPool) plus each account's numbers and features. */
export class NumberService extends NumberPool {
  // ------------------------------------------------------------------ caller numbers (ANI)

  private static number(raw: string | undefined, what: string): string {
    const n = phoneDigits(raw ?? '');
    if (!n)
      throw new NumberServiceError(
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
      throw new NumberServiceError(`number ${number} is already registered as a caller number of another account`);
    };
    const before = refuse(await owner());
    if (before) return before;
    const n = await this.db
      .selectFrom('tb_cli')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('userid', '=', userId)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= MAX_CLI_NUMBERS)
      throw new NumberServiceError(`at most ${MAX_CLI_NUMBERS} caller numbers per account: delete one first (del=1)`);
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
      throw new NumberServiceError(`number ${number} is not a caller number of this account`, 404);
    return number;
  }

  /** The account whose pin-less caller number this is (for the SIP core / callback). */
  async cliOwner(raw: string): Promise<number | undefined> {
    const number = phoneDigits(raw);
    if (!number) return undefined;
    const r = await this.db.selectFrom('tb_cli').select('userid').where('number', '=', number).executeTakeFirst();
    return r ? Number(r.userid) : undefined;
  }

  // ------------------------------------------------------------------ callback numbers

  /** Adds a custom callback number (per user, at most MAX_CALLBACK_NUMBERS, no duplicates). */
  async addCallbackNumber(userId: number, raw: string | undefined): Promise<string> {
    const number = NumberService.number(raw, 'anum');
    const dup = () => new NumberServiceError(`number ${number} is already one of your callback numbers`);
    const has = await this.db
      .selectFrom('tb_callbacknumbers')
      .select('id')
      .where('userid', '=', userId)
      .where('number', '=', number)
      .executeTakeFirst();
    if (has) throw dup();
    try {
      // insert only while the user has fewer than the maximum: one statement, so concurrent adds cannot overshoot on
      // SQLite
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
        throw new NumberServiceError(
          `at most ${MAX_CALLBACK_NUMBERS} callback numbers per user: delete one first (del=1)`,
        );
      }
      return number;
    } catch (e) {
      if (isUniqueViolation(e)) throw dup();
      throw e;
    }
  }

  /**
   * The account whose callback number this is (the callback access number's caller); undefined when it is none's,
   * or when several accounts registered it (who would pay is then unknown).
   */
  async callbackNumberOwner(raw: string): Promise<number | undefined> {
    const number = phoneDigits(raw);
    if (!number) return undefined;
    const rows = await this.db
      .selectFrom('tb_callbacknumbers')
      .select('userid')
      .where('number', '=', number)
      .limit(2)
      .execute();
    return rows.length === 1 ? Number(rows[0]!.userid) : undefined;
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
      throw new NumberServiceError(`number ${number} is not one of this user's callback numbers`, 404);
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
    if (v.length > 64) throw new NumberServiceError(`${kind}: at most 64 characters`);
    const self = `${kind}: a rule may not forward to the user themselves`;
    const u = await this.db
      .selectFrom('tb_users')
      .select(['id', 'username'])
      .where('username', '=', v)
      .executeTakeFirst();
    if (u) {
      if (Number(u.id) === userId) throw new NumberServiceError(self);
      return u.username;
    }
    const number = phoneDigits(v);
    if (!number)
      throw new NumberServiceError(
        `${kind}: "${v.slice(0, 40)}" is neither a phone number (digits with an optional leading +) nor an existing ` +
          `username`,
      );
    const me = await this.db
      .selectFrom('tb_users')
      .select(['username', 'did'])
      .where('id', '=', userId)
      .executeTakeFirst();
    const own = new Set<string>(
      (await this.assignedNumbers(userId)).concat(me?.did ? [phoneDigits(me.did) ?? me.did] : []),
    );
    if (me?.username === number || own.has(number)) throw new NumberServiceError(self);
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
    throw new NumberServiceError('could not allocate a conference room (busy), try again');
  }

  /** The owner (user id) of a conference room number, or undefined when the number is no room. */
  /** Sets (digits, 4-16) or removes ('' / 'none' / '0') the PIN of the user's room; answers the PIN now in force. */
  async setConfRoomPin(userId: number, raw: string): Promise<string> {
    const v = raw.trim();
    const pin = v === '' || v === '0' || v.toLowerCase() === 'none' ? null : v;
    if (pin !== null && !/^\d{4,16}$/.test(pin))
      throw new NumberServiceError('pin: 4 to 16 digits (the callers type it on the keypad), or none to remove it');
    await this.getConfRoom(userId); // the room exists (allocated on first use)
    await this.db.updateTable('tb_confrooms').set({ pin }).where('userid', '=', userId).execute();
    return pin ?? '';
  }

  /** The PIN of a room ('' when it has none or is no room). */
  async confRoomPin(room: string): Promise<string> {
    if (!/^\d{1,32}$/.test(room)) return '';
    const r = await this.db.selectFrom('tb_confrooms').select('pin').where('room', '=', room).executeTakeFirst();
    return r?.pin ?? '';
  }

  async confRoomOwner(room: string): Promise<number | undefined> {
    if (!/^\d{1,32}$/.test(room)) return undefined;
    const r = await this.db.selectFrom('tb_confrooms').select('userid').where('room', '=', room).executeTakeFirst();
    return r?.userid;
  }
}
