/**
 * Account commands: newuseru (public sign-up), changepwd, forgotpasswordquestion/forgotpasswordanswer, search,
 * setfield/getfield (whitelisted generic field access) and db (admin SQL through the custom SQL engine).
 *
 * Hierarchy rules (see also domain/accounts/search.ts):
 * - srvadmin manages everyone; an admin everyone except srvadmins and other admins outside their own subtree;
 *   owners/resellers the accounts strictly below them (parentid chain); support and end users nobody but
 *   themselves.
 * - Reads (search, getfield) follow the visibility scope: admins all, owners/resellers their subtree,
 *   support their parent's subtree, end users themselves (search: public exact look-up only).
 */
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { Services } from '../../services.js';
import { UserType, isAdminType, typeName } from '../../domain/accounts/types.js';
import { UserInputError, validateNewUser, type User, type UserPatch } from '../../domain/accounts/users.js';
import { safeEqual } from '../../domain/accounts/secrets.js';
import { passwordProblem, randomPassword, normalizeAnswer } from '../../domain/accounts/passwords.js';
import {
  scopeOf,
  inScope,
  searchUsers,
  publicLookup,
  MANAGER_COLUMNS,
  PUBLIC_COLUMNS,
  type SearchField,
} from '../../domain/accounts/search.js';
import {
  FieldError,
  tableSpec,
  fieldSpec,
  checkTypeHint,
  presentValue,
  filterValue,
  type TableSpec,
} from '../../domain/accounts/fields.js';
import { CustomSqlRunner } from '../customsql/runner.js';
import { compileTemplate, CustomSqlError } from '../customsql/template.js';
import { normalizeIp } from '../../domain/security/ip.js';

const U_FIELDS = ['u_username', 'u_password', 'u_name', 'u_email', 'u_phone', 'u_currency', 'u_country', 'u_address'];

/** Successful public sign-ups per source IP and hour (trusted sources are not capped). */
export const SIGNUPS_PER_IP_HOUR = 5;
/** Wrong forgotten-password answers per e-mail and hour before further attempts are refused. */
export const FORGOT_ATTEMPTS_PER_EMAIL_HOUR = 5;
const HOUR = 3_600_000;
/** A db runner (worker process / connection) is closed after this long without use. */
const DB_RUNNER_IDLE_MS = 60_000;
const SECRET_COLUMNS = new Set(['password_enc', 'forgot_answer_enc']);

// ---------------------------------------------------------------------------------------------
// per-server state (one per Services object: tests run several servers in one process)
// ---------------------------------------------------------------------------------------------

interface State {
  signups: Map<string, number[]>;
  forgotFailures: Map<string, number[]>;
  runner?: CustomSqlRunner;
  idle?: NodeJS.Timeout;
}
const states = new WeakMap<Services, State>();

function stateOf(s: Services): State {
  let st = states.get(s);
  if (!st) {
    st = { signups: new Map(), forgotFailures: new Map() };
    states.set(s, st);
  }
  return st;
}

/** Timestamps within the last hour (the list is pruned in place). */
function recent(map: Map<string, number[]>, key: string, now: number): number[] {
  const list = (map.get(key) ?? []).filter((t) => now - t < HOUR);
  if (list.length) map.set(key, list);
  else map.delete(key);
  return list;
}

function remember(map: Map<string, number[]>, key: string, now: number): void {
  if (map.size > 100_000) map.clear();
  const list = recent(map, key, now);
  list.push(now);
  map.set(key, list);
}

function minutesUntilFree(list: number[], now: number): number {
  const oldest = Math.min(...list);
  return Math.max(1, Math.ceil((oldest + HOUR - now) / 60_000));
}

/** The db command's runner for this server, created on first use and closed after a minute idle. */
function dbRunner(s: Services): CustomSqlRunner {
  const st = stateOf(s);
  const maxRows = s.config.get('dbmaxrows');
  if (st.runner && st.runner.maxRows !== maxRows) {
    void st.runner.close().catch(() => undefined);
    st.runner = undefined;
  }
  st.runner ??= new CustomSqlRunner({ dialect: s.storage.dialect, location: s.storage.location, maxRows });
  if (st.idle) clearTimeout(st.idle);
  st.idle = setTimeout(() => void closeDbRunner(s).catch(() => undefined), DB_RUNNER_IDLE_MS);
  st.idle.unref();
  return st.runner;
}

/** Stops the db command's worker process / connection of this server (call on shutdown; idempotent). */
export async function closeDbRunner(s: Services): Promise<void> {
  const st = states.get(s);
  if (!st) return;
  if (st.idle) clearTimeout(st.idle);
  st.idle = undefined;
  const r = st.runner;
  st.runner = undefined;
  if (r) await r.close();
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

function callerOf(ctx: CommandContext, what: string): User {
  const u = ctx.caller.user;
  if (!u) throw new ApiError(`${what} needs an authenticated user (authid with authpwd)`, 403);
  return u;
}

const isReseller = (t: number) => t === UserType.owner || t === UserType.reseller;

/** May `caller` change `target`'s account (password, fields)? Never their own through this path. */
async function mayManage(s: Services, caller: User, target: User): Promise<boolean> {
  if (target.id === caller.id) return false;
  if (caller.type === UserType.srvadmin) return true;
  if (caller.type === UserType.admin)
    return !isAdminType(target.type) || (await s.users.isInSubtree(caller.id, target.id));
  if (isReseller(caller.type)) return s.users.isInSubtree(caller.id, target.id);
  return false;
}

/** May `caller` see rows owned by user `ownerId` (0: the free pool, admins only)? */
async function maySee(s: Services, caller: User, ownerId: number): Promise<boolean> {
  if (isAdminType(caller.type)) return true;
  if (!ownerId) return false;
  if (ownerId === caller.id) return true;
  const scope = await scopeOf(s.storage.db, caller);
  return scope ? inScope(s.storage.db, scope, ownerId) : false;
}

function printable(v: string, max: number): boolean {
  return v.length <= max && !/[\x00-\x1f\x7f]/.test(v);
}

// ---------------------------------------------------------------------------------------------
// newuseru
// ---------------------------------------------------------------------------------------------

async function newuseru(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  if (!s.config.get('publicsignup'))
    return fail('public sign-up is disabled (set publicsignup=true)', { legacyStatus: 403 });
  const username = (p.u_username ?? '').trim();
  const password = p.u_password ?? '';
  const email = (p.u_email ?? '').trim();
  if (!username) return fail('u_username: missing');
  if (!password) return fail('u_password: missing');
  if (!email) return fail('u_email: required for sign-up');
  const input = {
    username,
    password,
    type: UserType.enduser,
    name: p.u_name,
    email,
    phone: p.u_phone,
    currency: p.u_currency,
    country: p.u_country,
    address: p.u_address,
  };
  try {
    validateNewUser(input);
  } catch (e) {
    if (e instanceof UserInputError) return fail(e.message);
    throw e;
  }
  const weak = passwordProblem(password, username, 'u_password');
  if (weak) return fail(weak);

  const question = (p.u_forgotquestion ?? '').trim();
  const answer = p.u_forgotanswer ?? '';
  if (Boolean(question) !== Boolean(normalizeAnswer(answer)))
    return fail('u_forgotquestion and u_forgotanswer: give both or neither');
  if (question && !printable(question, 256)) return fail('u_forgotquestion: at most 256 printable characters');
  if (answer && !printable(answer, 128)) return fail('u_forgotanswer: at most 128 printable characters');

  // parent: the server admin, or an existing enabled owner/reseller named by u_parentid
  let parentid: number;
  if (p.u_parentid !== undefined && p.u_parentid.trim() !== '') {
    const raw = p.u_parentid.trim();
    const parent = /^\d{1,9}$/.test(raw) ? await s.users.byId(Number(raw)) : undefined;
    if (!parent || !parent.enabled || !isReseller(parent.type))
      return fail('u_parentid: no owner or reseller account with this id', { legacyStatus: 404 });
    parentid = parent.id;
  } else {
    const admin = await s.users.serverAdmin();
    if (!admin) return fail('public sign-up: no server admin account exists');
    parentid = admin.id;
  }

  const st = stateOf(s);
  const ip = normalizeIp(ctx.req.source.ip);
  const now = Date.now();
  if (!ctx.caller.trustedIp) {
    const list = recent(st.signups, ip, now);
    if (list.length >= SIGNUPS_PER_IP_HOUR) {
      return fail(
        `too many sign-ups from ${ip}: at most ${SIGNUPS_PER_IP_HOUR} per hour, try again in ${minutesUntilFree(list, now)} minute(s)`,
        { legacyStatus: 412 },
      );
    }
  }
  if (await s.users.emailInUse(email)) return fail('u_email: already used by another account');

  let user: User;
  try {
    user = await s.users.create({ ...input, parentid });
  } catch (e) {
    if (e instanceof UserInputError) return fail(e.message);
    throw e;
  }
  if (question) {
    try {
      await s.users.setForgot(user.id, question, answer);
    } catch (e) {
      // never leave a half-made account behind
      await s.storage.db.deleteFrom('tb_users').where('id', '=', user.id).execute();
      s.users.clearCache();
      throw e;
    }
  }
  if (!ctx.caller.trustedIp) remember(st.signups, ip, now);
  s.log.info({ user: user.username, id: user.id, parentid, ip }, 'public sign-up');
  return ok(`user ${user.username} created with id ${user.id}`, {
    fields: { id: user.id, username: user.username, type: typeName(user.type), parentid },
  });
}

// ---------------------------------------------------------------------------------------------
// changepwd
// ---------------------------------------------------------------------------------------------

async function changepwd(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'changepwd');
  const newpw = p.newpassword ?? '';
  if (!newpw) return fail('newpassword: missing');

  // `username` names the account to change (default: the caller's own)
  let target: User = caller;
  const named = (p.username ?? '').trim();
  if (named && named.toLowerCase() !== caller.username.toLowerCase()) {
    const t = await s.users.byUsername(named);
    if (!t || !(await mayManage(s, caller, t))) {
      return fail(
        'username: no such user in your part of the hierarchy (you may change your own password, or those of accounts below you)',
        { legacyStatus: 404 },
      );
    }
    target = t;
  }

  if (target.id === caller.id && ctx.caller.via !== 'trusted-ip' && ctx.caller.via !== 'console') {
    const old = p.oldpassword;
    if (old === undefined || old === '')
      return fail('oldpassword: required to change your own password', { legacyStatus: 403 });
    const auth = await s.users.forAuth(caller.username);
    const good = safeEqual(auth?.password ?? '\u0000', old);
    if (!good || !auth) {
      await s.bans.recordFailure(ctx.req.source.ip, 'changepwd');
      return fail('oldpassword: wrong password', { legacyStatus: 403 });
    }
  }
  const weak = passwordProblem(newpw, target.username, 'newpassword');
  if (weak) return fail(weak);
  if (!(await s.users.setPassword(target.id, newpw))) return fail('username: user not found', { legacyStatus: 404 });
  s.log.info({ user: target.username, by: caller.username }, 'password changed');
  return ok(`password changed for ${target.username}`, { fields: { username: target.username } });
}

// ---------------------------------------------------------------------------------------------
// forgotten password
// ---------------------------------------------------------------------------------------------

const NO_QUESTION = 'no password question is set for this e-mail';
const WRONG_ANSWER = 'wrong answer (or no password question is set for this e-mail)';

async function forgotQuestion(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const email = (p.email ?? '').trim();
  if (!email) return fail('email: missing');
  if (email.length > 320) return fail(NO_QUESTION);
  const acct = await ctx.services.users.forgotByEmail(email);
  if (!acct) return fail(NO_QUESTION);
  return ok(acct.question, { fields: { question: acct.question } });
}

async function forgotAnswer(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const email = (p.email ?? '').trim();
  const answer = p.forgotpasswordanswer ?? p.answer ?? '';
  if (!email) return fail('email: missing');
  if (!answer.trim()) return fail('forgotpasswordanswer: missing');
  const key = email.toLowerCase().slice(0, 320);
  const st = stateOf(s);
  const now = Date.now();
  const failures = recent(st.forgotFailures, key, now);
  if (failures.length >= FORGOT_ATTEMPTS_PER_EMAIL_HOUR) {
    return fail(`too many wrong answers for this e-mail: try again in ${minutesUntilFree(failures, now)} minute(s)`, {
      legacyStatus: 403,
    });
  }
  const acct = email.length <= 320 ? await s.users.forgotByEmail(email) : undefined;
  const good = acct
    ? await s.users.checkForgot(acct.id, answer)
    : safeEqual('\u0000no account', normalizeAnswer(answer)) && false;
  if (!good || !acct) {
    remember(st.forgotFailures, key, now);
    await s.bans.recordFailure(ctx.req.source.ip, 'password reset');
    return fail(WRONG_ANSWER, { legacyStatus: 403 });
  }
  st.forgotFailures.delete(key);
  let password = randomPassword();
  while (passwordProblem(password, acct.username, 'password')) password = randomPassword();
  await s.users.setPassword(acct.id, password);
  s.log.info({ user: acct.username, ip: ctx.req.source.ip }, 'password reset by the forgotten-password answer');
  return ok(`password reset for ${acct.username}: new password ${password}`, {
    fields: { username: acct.username, password },
  });
}

// ---------------------------------------------------------------------------------------------
// search
// ---------------------------------------------------------------------------------------------

async function search(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'search');
  let limit = 20;
  if (p.limit !== undefined && p.limit.trim() !== '') {
    if (!/^\d{1,6}$/.test(p.limit.trim()) || Number(p.limit) < 1) return fail('limit: expected a number from 1 to 100');
    limit = Math.min(100, Number(p.limit));
  }
  let term: string | undefined;
  let field: SearchField = 'all';
  const pick = (v: string | undefined, f: SearchField) => {
    if (term === undefined && v !== undefined && v.trim() !== '') {
      term = v.trim();
      field = f;
    }
  };
  pick(p.txt, 'all');
  pick(p.search, 'all');
  pick(p.name, 'name');
  pick(p.username, 'username');
  pick(p.email, 'email');
  pick(p.phone, 'phone');
  if (term === undefined) return fail('txt: give a search text (or name, username, email or phone)');
  if (term.length > 128) return fail('txt: at most 128 characters');

  const db = s.storage.db;
  const scope = await scopeOf(db, caller);
  if (!scope) {
    const rows = await publicLookup(db, term, limit);
    return ok(`${rows.length} user(s)`, {
      columns: PUBLIC_COLUMNS,
      rows: rows as unknown as Array<Record<string, unknown>>,
    });
  }
  const rows = await searchUsers(db, scope, term, field, limit);
  return ok(`${rows.length} user(s)`, {
    columns: MANAGER_COLUMNS,
    rows: rows as unknown as Array<Record<string, unknown>>,
  });
}

// ---------------------------------------------------------------------------------------------
// setfield / getfield
// ---------------------------------------------------------------------------------------------

function fieldFail(e: unknown): ApiResult {
  if (e instanceof FieldError || e instanceof UserInputError) return fail(e.message);
  throw e;
}

/** The owner id of row `rowid` of a table (undefined when there is no such row). */
async function rowOwner(s: Services, spec: TableSpec, rowid: number): Promise<number | undefined> {
  const db = s.storage.db as unknown as import('kysely').Kysely<Record<string, Record<string, unknown>>>;
  const col = spec.owner ?? spec.key;
  const r = await db.selectFrom(spec.table).select(col).where(spec.key, '=', rowid).executeTakeFirst();
  return r ? Number(r[col] ?? 0) : undefined;
}

async function setfield(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'setfield');
  if (!isAdminType(caller.type) && !isReseller(caller.type))
    return fail('setfield: only admins, owners and resellers may change fields', { legacyStatus: 403 });
  let spec: TableSpec;
  let column: string;
  let stored: string | number | null;
  let field;
  try {
    spec = tableSpec(p.table);
    ({ column, field } = fieldSpec(spec, p.fieldname, 'write'));
    if (p.fieldvalue === undefined) return fail('fieldvalue: missing (send it empty to clear a text field)');
    checkTypeHint(p.fieldtype, p.fieldvalue, 'fieldtype');
    stored = field.write!(p.fieldvalue);
  } catch (e) {
    return fieldFail(e);
  }
  const rawId = (p.rowid ?? '').trim();
  if (!/^\d{1,9}$/.test(rawId)) return fail(`rowid: expected the ${spec.key} of the ${spec.table} row (a number)`);
  const rowid = Number(rawId);
  const notYours = fail(`rowid: no row ${rowid} in ${spec.table} that you may change`, { legacyStatus: 404 });
  if (!spec.owner && !isAdminType(caller.type))
    return fail(`setfield: ${spec.table} can only be changed by admins`, { legacyStatus: 403 });
  const owner = await rowOwner(s, spec, rowid);
  if (owner === undefined) return notYours;

  if (spec.table === 'tb_users') {
    const target = await s.users.byId(rowid);
    if (!target) return notYours;
    const self = target.id === caller.id;
    if (!(await mayManage(s, caller, target)) && !(self && caller.type === UserType.srvadmin)) return notYours;
    const patch: UserPatch = {};
    switch (column) {
      case 'type':
        if (caller.type !== UserType.srvadmin)
          return fail('fieldname: type: only the server admin may change user types', { legacyStatus: 403 });
        if (self) return fail('fieldname: type: you cannot change your own type');
        patch.type = Number(stored);
        break;
      case 'enabled':
        if (self) return fail('fieldname: enabled: you cannot disable your own account');
        patch.enabled = Number(stored);
        break;
      case 'parentid': {
        const pid = Number(stored);
        const parent = pid ? await s.users.byId(pid) : undefined;
        if (!parent) return fail('fieldvalue: parentid: no such user', { legacyStatus: 404 });
        if (!isAdminType(parent.type) && !isReseller(parent.type))
          return fail('fieldvalue: parentid: the parent must be an admin, owner or reseller');
        if (await s.users.isInSubtree(target.id, parent.id))
          return fail('fieldvalue: parentid: the parent cannot be the account itself or one below it');
        if (
          caller.type !== UserType.srvadmin &&
          !isAdminType(caller.type) &&
          !(await s.users.isInSubtree(caller.id, parent.id))
        ) {
          return fail('fieldvalue: parentid: the new parent is not in your part of the hierarchy', {
            legacyStatus: 403,
          });
        }
        patch.parentid = pid;
        break;
      }
      case 'tariffid':
        if (stored !== null) {
          const plan = await s.storage.db
            .selectFrom('tb_tariffplans')
            .select('id')
            .where('id', '=', Number(stored))
            .executeTakeFirst();
          if (!plan) return fail('fieldvalue: tariffid: no such tariff plan', { legacyStatus: 404 });
        }
        patch.tariffid = stored === null ? null : Number(stored);
        break;
      case 'currency': {
        const bal = await s.ledger.balance(target.id);
        if (bal && bal.credit !== 0 && bal.currency !== stored)
          return fail(
            'fieldvalue: currency can only change while the credit is 0 (move the credit with addcredit first)',
          );
        patch.currency = String(stored);
        break;
      }
      default:
        (patch as Record<string, unknown>)[column] = stored;
    }
    await s.users.update(target.id, patch);
  } else {
    if (!(await maySee(s, caller, owner))) return notYours;
    if (spec.table === 'tb_numbers' && column === 'userid' && Number(stored) !== 0) {
      const u = await s.users.byId(Number(stored));
      if (!u || !(await maySee(s, caller, u.id)))
        return fail('fieldvalue: userid: no such user in your part of the hierarchy', { legacyStatus: 404 });
    }
    const db = s.storage.db as unknown as import('kysely').Kysely<Record<string, Record<string, unknown>>>;
    const values: Record<string, unknown> = { [column]: stored };
    if (spec.table === 'tb_callforward') values.updated_at = Date.now();
    await db.updateTable(spec.table).set(values).where(spec.key, '=', rowid).execute();
    if (spec.table === 'tb_tariffs') await s.rating.load();
  }
  s.log.info({ table: spec.table, field: column, rowid, by: caller.username }, 'setfield');
  const shown = presentValue(field, stored);
  return ok(`${spec.table}.${column} of row ${rowid} set to ${shown}`, {
    fields: { table: spec.table, rowid, fieldname: column, fieldvalue: shown },
  });
}

/** getfield's auto-guessed filter columns for a value, in the order they are tried. */
function guessFilters(spec: TableSpec, v: string): string[] {
  const shortNum = /^\d{1,9}$/.test(v);
  const phoneLike = /^\+?\d{2,20}$/.test(v.replace(/[\s()-]/g, ''));
  switch (spec.table) {
    case 'tb_users':
      return [...(shortNum ? ['id'] : []), 'username', ...(phoneLike ? ['phone', 'did'] : [])];
    case 'tb_numbers':
      return [...(shortNum ? ['id'] : []), 'number'];
    case 'tb_callforward':
      return ['userid'];
    case 'tb_tariffs':
      return [...(shortNum ? ['id'] : []), 'prefix'];
  }
}

async function getfield(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'getfield');
  let spec: TableSpec;
  let ret;
  let filters: string[];
  const value = (p.filterfieldvalue ?? '').trim();
  try {
    spec = tableSpec(p.table);
    ret = fieldSpec(spec, p.retfieldname || 'id', 'read');
    if (!value) return fail('filterfieldvalue: mandatory');
    checkTypeHint(p.filterfieldtype, value, 'filterfieldtype');
    const name = (p.filterfieldname ?? '').trim().toLowerCase();
    filters = name && name !== 'auto' ? [fieldSpec(spec, name, 'filter').column] : guessFilters(spec, value);
  } catch (e) {
    return fieldFail(e);
  }
  if (!spec.owner && !isAdminType(caller.type))
    return fail(`getfield: ${spec.table} can only be read by admins`, { legacyStatus: 403 });
  const db = s.storage.db as unknown as import('kysely').Kysely<Record<string, Record<string, unknown>>>;
  const cols = [...new Set([ret.column, spec.key, ...(spec.owner ? [spec.owner] : [])])];
  for (const col of filters) {
    const f = spec.fields[col]!;
    let fv: string | number;
    try {
      fv = filterValue(f, col === 'phone' || col === 'did' || col === 'number' ? value.replace(/[\s()-]/g, '') : value);
    } catch (e) {
      if (filters.length > 1) continue; // auto-guess: this column does not fit the value
      return fieldFail(e);
    }
    const rows = await db.selectFrom(spec.table).select(cols).where(col, '=', fv).orderBy(spec.key).limit(50).execute();
    for (const r of rows) {
      if (spec.owner && !(await maySee(s, caller, Number(r[spec.owner] ?? 0)))) continue;
      const v = presentValue(ret.field, r[ret.column]);
      return ok(v, { fields: { [ret.column]: v } });
    }
  }
  return fail(`no matching row in ${spec.table}`, { legacyStatus: 404 });
}

// ---------------------------------------------------------------------------------------------
// db
// ---------------------------------------------------------------------------------------------

async function dbCommand(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'db');
  if (!isAdminType(caller.type)) throw new ApiError('db is for admins only (user type srvadmin or admin)', 403);
  const txt = (p.txt ?? '').trim();
  if (!txt) return fail('txt: missing SQL statement');
  if (/password_enc|forgot_answer_enc/i.test(txt))
    return fail('db: statements naming password_enc or forgot_answer_enc are refused (use changepwd)');
  if (/u&["']/i.test(txt)) return fail('db: unicode-escaped identifiers/strings (U&"…") are refused');
  let kind: string;
  try {
    kind = compileTemplate(txt, s.storage.dialect).kind;
  } catch (e) {
    if (e instanceof CustomSqlError) return fail(`db: ${e.message}`);
    throw e;
  }
  const code = txt.replace(/'(?:[^']|'')*'/g, "''"); // words inside string literals are data
  if (kind !== 'select' && /\bcredit\b/i.test(code) && /\btb_users\b/i.test(code)) {
    return fail('db: credit changes must go through the ledger: use addcredit');
  }
  const sqlText = kind !== 'select' && !txt.startsWith('*') ? '*' + txt : txt;
  const sparams: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) if (/^sparam\d{1,2}$/.test(k)) sparams[k] = v;
  let r;
  try {
    r = await dbRunner(s).run(
      sqlText,
      { userId: caller.id, username: caller.username, sparams },
      s.config.get('customsqltimeout'),
    );
  } catch (e) {
    if (e instanceof CustomSqlError) return fail(`db: ${e.message}`);
    throw e;
  } finally {
    if (kind !== 'select') s.users.clearCache();
  }
  s.log.info({ by: caller.username, kind }, 'db command');
  if ('queued' in r) return ok('query queued');
  if (kind !== 'select') return ok(`${r.changes ?? 0} row(s) affected`, { fields: { changes: r.changes ?? 0 } });
  const columns = r.columns.filter((c) => !SECRET_COLUMNS.has(c.toLowerCase()));
  const rows = r.rows.map((row) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => !SECRET_COLUMNS.has(k.toLowerCase()))),
  );
  const text = r.truncated
    ? `${rows.length} rows (more rows matched: answers are limited to ${s.config.get('dbmaxrows')}, option dbmaxrows)`
    : `${rows.length} rows`;
  return ok(text, { columns, rows });
}

// ---------------------------------------------------------------------------------------------

export const userCommands: CommandDef[] = [
  {
    name: 'newuseru',
    params: U_FIELDS,
    level: 14,
    reqKey: 1,
    description:
      'public sign-up (publicsignup=true): u_username,u_password,u_name,u_email,u_phone,u_currency,u_country,u_address; optional u_forgotquestion, u_forgotanswer, u_parentid (an owner/reseller); creates an end user',
    run: newuseru,
  },
  {
    name: 'changepwd',
    params: ['newpassword', 'oldpassword'],
    level: 12,
    description:
      'change your password (newpassword, oldpassword); managers: username=… resets an account below them without oldpassword',
    run: changepwd,
  },
  {
    name: 'forgotpasswordquestion',
    params: ['email'],
    level: 14,
    reqKey: 1,
    description: 'forgotten password: the question set for this e-mail',
    run: forgotQuestion,
  },
  {
    name: 'forgotpasswordanswer',
    params: ['email', 'forgotpasswordanswer'],
    level: 14,
    reqKey: 1,
    description: 'forgotten password: a right answer resets the password and answers the new one (username, password)',
    run: forgotAnswer,
  },
  {
    name: 'search',
    params: ['txt', 'limit'],
    level: 12,
    description:
      'user search by username, name, phone/DID or e-mail (txt, or name/username/email/phone; limit 1-100, default 20) within your part of the hierarchy',
    run: search,
  },
  {
    name: 'setfield',
    params: ['table', 'fieldtype', 'fieldname', 'fieldvalue', 'rowid', 'sync'],
    level: 6,
    description:
      'update one whitelisted field (tables tb_users, tb_numbers, tb_callforward, tb_tariffs) of a row in your part of the hierarchy',
    run: setfield,
  },
  {
    name: 'getfield',
    params: ['table', 'retfieldname', 'filterfieldtype', 'filterfieldname', 'filterfieldvalue'],
    level: 6,
    description:
      'read one whitelisted field (default table tb_users, retfieldname id, filter auto-guessed: id, username, phone/DID)',
    run: getfield,
  },
  {
    name: 'db',
    params: ['txt'],
    level: 6,
    description:
      'one SQL SELECT/INSERT/UPDATE/DELETE (admins only; time limit customsqltimeout, at most dbmaxrows rows)',
    run: dbCommand,
  },
];
