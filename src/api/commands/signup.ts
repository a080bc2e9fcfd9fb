/** Public sign-up: newuseru creates an end user below the server admin or a named owner/reseller. */
import { ok, fail, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { HourlyAttempts } from '../auth/attempts.js';
import { UserType, typeName } from '../../domain/accounts/types.js';
import { validateNewUser } from '../../domain/accounts/users.js';
import { passwordProblem, normalizeAnswer } from '../../domain/accounts/passwords.js';
import { normalizeIp } from '../../domain/security/ip.js';

const U_FIELDS = ['u_username', 'u_password', 'u_name', 'u_email', 'u_phone', 'u_currency', 'u_country', 'u_address'];

/** Successful public sign-ups per source IP and hour (trusted sources are not capped). */
export const SIGNUPS_PER_IP_HOUR = 5;

const isReseller = (t: number) => t === UserType.owner || t === UserType.reseller;

function printable(v: string, max: number): boolean {
  return v.length <= max && !/[\x00-\x1f\x7f]/.test(v);
}

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
  validateNewUser(input);
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

  const ip = normalizeIp(ctx.req.source.ip);
  const now = Date.now();
  if (!ctx.caller.trustedIp) {
    const list = s.signups.recent(ip, now);
    if (list.length >= SIGNUPS_PER_IP_HOUR) {
      const wait = HourlyAttempts.minutesUntilFree(list, now);
      return fail(
        `too many sign-ups from ${ip}: at most ${SIGNUPS_PER_IP_HOUR} per hour, try again in ${wait} minute(s)`,
        { legacyStatus: 412 },
      );
    }
  }
  if (await s.users.emailInUse(email)) return fail('u_email: already used by another account');

  const user = await s.users.create({ ...input, parentid });
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
  if (!ctx.caller.trustedIp) s.signups.remember(ip, now);
  s.log.info({ user: user.username, id: user.id, parentid, ip }, 'public sign-up');
  return ok(`user ${user.username} created with id ${user.id}`, {
    fields: { id: user.id, username: user.username, type: typeName(user.type), parentid },
  });
}

export const signupCommands: CommandDef[] = [
  {
    name: 'newuseru',
    params: U_FIELDS,
    level: 14,
    reqKey: 1,
    description:
      'public sign-up (publicsignup=true): u_username,u_password,u_name,u_email,u_phone,u_currency,u_country,' +
      'u_address; optional u_forgotquestion, u_forgotanswer, u_parentid (an owner/reseller); creates an end user',
    run: newuseru,
  },
];
