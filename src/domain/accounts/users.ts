/**
 * Accounts: creation with validation, look-up for authentication (by username, id, PIN or DID), and the
 * hierarchy (parentid). A cache (authlookup.ts) keeps hot look-ups (every SIP digest check, every API call) off the
 * database: an entry is fresh for CACHE_MS, every write through this service invalidates it, and
 * `syncusers`/`reload` clear it for changes made directly in the database.
 */
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { SecretBox, safeEqual } from './secrets.js';
import { normalizeAnswer } from './passwords.js';
import { AuthLookup } from './authlookup.js';
import { UserType, type UserTypeId } from './types.js';
import { DomainError } from '../errors.js';

export interface User {
  id: number;
  username: string;
  type: number;
  parentid: number;
  name: string;
  email: string;
  phone: string;
  currency: string;
  country: string;
  address: string;
  pin: string | null;
  did: string | null;
  enabled: boolean;
}

/** A user together with the clear password, for authentication only; never serialised. */
export interface AuthUser extends User {
  password: string;
}

export interface NewUser {
  username: string;
  password: string;
  type?: UserTypeId;
  parentid?: number;
  name?: string;
  email?: string;
  phone?: string;
  currency?: string;
  country?: string;
  address?: string;
  pin?: string | null;
  did?: string | null;
}

/** Account input that does not pass validation; the message names the field. */
export class UserInputError extends DomainError {}

const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$/;
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{1,60}$/;
const PHONE_RE = /^\+?[0-9]{2,20}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const CACHE_MS = 30_000;

export function validateNewUser(u: NewUser): NewUser {
  const fail = (m: string): never => {
    throw new UserInputError(m);
  };
  if (!USERNAME_RE.test(u.username))
    fail('u_username: 1-64 characters of letters, digits and _.@+- starting with a letter or digit');
  if (!u.password || u.password.length > 128 || /[\x00-\x1f]/.test(u.password))
    fail('u_password: 1-128 printable characters');
  if (u.email && !EMAIL_RE.test(u.email)) fail('u_email: not an e-mail address');
  if (u.phone && !PHONE_RE.test(u.phone.replace(/[\s-]/g, '')))
    fail('u_phone: expected digits with an optional leading +');
  const currency = (u.currency || 'USD').toUpperCase();
  if (!CURRENCY_RE.test(currency)) fail('u_currency: expected a 3-letter ISO code such as USD');
  for (const [k, v, max] of [
    ['u_name', u.name, 256],
    ['u_country', u.country, 64],
    ['u_address', u.address, 512],
  ] as const) {
    if (v && (v.length > max || /[\x00-\x08\x0b-\x1f]/.test(v))) fail(`${k}: at most ${max} printable characters`);
  }
  if (u.pin != null && u.pin !== '' && !/^[0-9A-Za-z]{4,32}$/.test(u.pin)) fail('u_pin: 4-32 letters or digits');
  if (u.did != null && u.did !== '' && !PHONE_RE.test(u.did)) fail('u_did: expected digits with an optional leading +');
  return { ...u, currency, phone: u.phone?.replace(/[\s-]/g, '') };
}

type Row = Database['tb_users'] extends infer T ? { [K in keyof T]: any } : never;

function toUser(r: Row): User {
  return {
    id: Number(r.id),
    username: r.username,
    type: Number(r.type),
    parentid: Number(r.parentid),
    name: r.name,
    email: r.email,
    phone: r.phone,
    currency: r.currency,
    country: r.country,
    address: r.address,
    pin: r.pin ?? null,
    did: r.did ?? null,
    enabled: Number(r.enabled) === 1,
  };
}

/**
 * The cached account with its password, built as one literal: every cached user then shares one hidden class
 * (`{ ...user, password }` gave each of them a map of its own, some 400 bytes a user).
 */
function toAuthUser(r: Row, password: string): AuthUser {
  return {
    id: Number(r.id),
    username: r.username,
    type: Number(r.type),
    parentid: Number(r.parentid),
    name: r.name,
    email: r.email,
    phone: r.phone,
    currency: r.currency,
    country: r.country,
    address: r.address,
    pin: r.pin ?? null,
    did: r.did ?? null,
    enabled: Number(r.enabled) === 1,
    password,
  };
}

export class UserService {
  /** authid → account with its clear password, cached (authlookup.ts) */
  private readonly auth: AuthLookup<AuthUser>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    opts: { cacheMs?: number } = {},
  ) {
    this.auth = new AuthLookup(db, box, toAuthUser, opts.cacheMs ?? CACHE_MS);
    this.byUsernameQuery = db.selectFrom('tb_users').selectAll().where('username', '=', '').compile();
  }

  /** `byUsername` is on the API's hot path (every transfer's receiver): compiled once, run with new parameters. */
  private readonly byUsernameQuery: CompiledQuery;

  private clearListeners: Array<() => void> = [];

  /** Called whenever the user cache is cleared (other caches of account state follow it). */
  onCacheClear(fn: () => void): void {
    this.clearListeners.push(fn);
  }

  /** The accounts held by the authentication cache (fastusers), without passwords. */
  cachedUsers() {
    return this.auth.entries();
  }

  clearCache(): void {
    this.auth.clear();
    for (const fn of this.clearListeners) fn();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('tb_users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async create(input: NewUser): Promise<User> {
    const u = validateNewUser(input);
    const exists = await this.db
      .selectFrom('tb_users')
      .select('id')
      .where((eb) => {
        const ors = [eb('username', '=', u.username)];
        if (u.pin) ors.push(eb('pin', '=', u.pin));
        if (u.did) ors.push(eb('did', '=', u.did));
        return eb.or(ors);
      })
      .executeTakeFirst();
    if (exists) throw new UserInputError('u_username: already taken (or the PIN/DID is in use)');
    try {
      const r = await this.db
        .insertInto('tb_users')
        .values({
          username: u.username,
          password_enc: this.box.encrypt(u.password),
          type: u.type ?? UserType.enduser,
          parentid: u.parentid ?? 0,
          name: u.name ?? '',
          email: u.email ?? '',
          phone: u.phone ?? '',
          currency: u.currency ?? 'USD',
          country: u.country ?? '',
          address: u.address ?? '',
          pin: u.pin || null,
          did: u.did || null,
          credit: 0,
          enabled: 1,
          created_at: Date.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      this.auth.clear();
      return toUser(r as Row);
    } catch (e) {
      if (/unique|duplicate/i.test(String((e as Error).message)))
        throw new UserInputError('u_username: already taken (or the PIN/DID is in use)');
      throw e;
    }
  }

  async byId(id: number): Promise<User | undefined> {
    const r = await this.db.selectFrom('tb_users').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toUser(r as Row) : undefined;
  }

  /** The account whose calling-card PIN (tb_users.pin) this is (the access-number IVR). */
  async byPin(pin: string): Promise<User | undefined> {
    if (!/^[0-9A-Za-z]{4,32}$/.test(pin)) return undefined;
    const r = await this.db.selectFrom('tb_users').selectAll().where('pin', '=', pin).executeTakeFirst();
    return r ? toUser(r as Row) : undefined;
  }

  async byUsername(username: string): Promise<User | undefined> {
    const r = (await this.db.executeQuery<Row>({ ...this.byUsernameQuery, parameters: [username] })).rows[0];
    return r ? toUser(r) : undefined;
  }

  /**
   * Finds the account an API `authid` names: a username, then a PIN, a DID, or a numeric user id.
   * Cached briefly; the result carries the clear password for the caller's check.
   */
  forAuth(authid: string): Promise<AuthUser | null> {
    return this.auth.get(authid);
  }

  /** True when `ancestor` is `user` or one of its parents (the reseller chain). */
  async isInSubtree(ancestorId: number, userId: number): Promise<boolean> {
    let id = userId;
    for (let depth = 0; depth < 32 && id; depth++) {
      if (id === ancestorId) return true;
      const r = await this.db.selectFrom('tb_users').select('parentid').where('id', '=', id).executeTakeFirst();
      if (!r) return false;
      id = Number(r.parentid);
    }
    return false;
  }

  // ---- additions for the account commands (changepwd, forgotpassword*, newuseru, setfield) ----

  /** Replaces the password (the caller checks strength and rights). */
  async setPassword(userId: number, password: string): Promise<boolean> {
    if (!password || password.length > 128 || /[\x00-\x1f]/.test(password))
      throw new UserInputError('password: 1-128 printable characters');
    const r = await this.db
      .updateTable('tb_users')
      .set({ password_enc: this.box.encrypt(password) })
      .where('id', '=', userId)
      .executeTakeFirst();
    this.auth.clear();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * Sets (or with question null clears) the forgotten-password question; the answer is stored normalised and
   * encrypted.
   */
  async setForgot(userId: number, question: string | null, answer: string | null): Promise<boolean> {
    const q = question?.trim() ?? '';
    const a = answer == null ? '' : normalizeAnswer(answer);
    if (q && !a) throw new UserInputError('forgot password: an answer is needed with the question');
    const r = await this.db
      .updateTable('tb_users')
      .set({ forgot_question: q || null, forgot_answer_enc: q ? this.box.encrypt(a) : null })
      .where('id', '=', userId)
      .executeTakeFirst();
    this.auth.clear();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * The account a forgotten-password request for this e-mail is about: the enabled account with the lowest id
   * whose e-mail matches (ignoring case) and that has a question set; undefined otherwise.
   */
  async forgotByEmail(email: string): Promise<{ id: number; username: string; question: string } | undefined> {
    const e = email.trim().toLowerCase();
    if (!e) return undefined;
    const r = await this.db
      .selectFrom('tb_users')
      .select(['id', 'username', 'forgot_question'])
      .where((eb) => eb(eb.fn<string>('lower', ['email']), '=', e))
      .where('enabled', '=', 1)
      .where('forgot_question', 'is not', null)
      .where('forgot_answer_enc', 'is not', null)
      .orderBy('id')
      .executeTakeFirst();
    if (!r || !r.forgot_question) return undefined;
    return { id: Number(r.id), username: r.username, question: r.forgot_question };
  }

  /** Constant-time check of a forgotten-password answer (trimmed, case-insensitive). False when none is set. */
  async checkForgot(userId: number, answer: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('tb_users')
      .select('forgot_answer_enc')
      .where('id', '=', userId)
      .executeTakeFirst();
    let stored = '\u0000no answer set';
    if (r?.forgot_answer_enc) {
      try {
        stored = this.box.decrypt(r.forgot_answer_enc);
      } catch {
        /* unreadable: matches nothing */
      }
    }
    const good = safeEqual(stored, normalizeAnswer(answer));
    return good && Boolean(r?.forgot_answer_enc);
  }

  /** True when an account already uses this e-mail address (ignoring case). */
  async emailInUse(email: string): Promise<boolean> {
    const e = email.trim().toLowerCase();
    if (!e) return false;
    const r = await this.db
      .selectFrom('tb_users')
      .select('id')
      .where((eb) => eb(eb.fn<string>('lower', ['email']), '=', e))
      .executeTakeFirst();
    return Boolean(r);
  }

  /** The server admin (the srvadmin with the lowest id). */
  async serverAdmin(): Promise<User | undefined> {
    const r = await this.db.selectFrom('tb_users').selectAll().where('type', '=', 1).orderBy('id').executeTakeFirst();
    return r ? toUser(r as Row) : undefined;
  }

  /** Whether the account may transfer calls by REFER (tb_users.allowtransfer; false for an unknown account). */
  async allowsTransfer(userId: number): Promise<boolean> {
    const r = await this.db.selectFrom('tb_users').select('allowtransfer').where('id', '=', userId).executeTakeFirst();
    return Number(r?.allowtransfer ?? 0) === 1;
  }

  /** Updates profile/hierarchy columns of one account (values already validated by the caller). */
  async update(userId: number, patch: UserPatch): Promise<boolean> {
    if (!Object.keys(patch).length) return false;
    const r = await this.db.updateTable('tb_users').set(patch).where('id', '=', userId).executeTakeFirst();
    this.auth.clear();
    return Number(r.numUpdatedRows) > 0;
  }
}

/** Columns UserService.update may change (never password_enc, credit or the forgotten-password answer). */
export type UserPatch = Partial<
  Pick<
    Database['tb_users'],
    'name' | 'email' | 'phone' | 'country' | 'address' | 'currency' | 'enabled' | 'tariffid' | 'parentid' | 'type'
  >
> & { allowtransfer?: number };
