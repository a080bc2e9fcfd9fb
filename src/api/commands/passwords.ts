/**
 * Passwords: changepwd (your own with the old password; a manager resets an account they may manage) and the
 * forgotten-password pair forgotpasswordquestion / forgotpasswordanswer.
 */
import { ok, fail, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { HourlyAttempts } from '../auth/attempts.js';
import { callerOf } from './target.js';
import type { User } from '../../domain/accounts/users.js';
import { may } from '../../domain/accounts/access.js';
import { safeEqual } from '../../domain/accounts/secrets.js';
import { passwordProblem, randomPassword, normalizeAnswer } from '../../domain/accounts/passwords.js';

/** Wrong forgotten-password answers per e-mail and hour before further attempts are refused. */
export const FORGOT_ATTEMPTS_PER_EMAIL_HOUR = 5;

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
    if (!t || !(await may(s.users, caller, 'manage', t))) {
      return fail(
        'username: no such user in your part of the hierarchy ' +
          '(you may change your own password, or those of accounts below you)',
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
  const now = Date.now();
  const failures = s.forgotFailures.recent(key, now);
  if (failures.length >= FORGOT_ATTEMPTS_PER_EMAIL_HOUR) {
    const wait = HourlyAttempts.minutesUntilFree(failures, now);
    return fail(`too many wrong answers for this e-mail: try again in ${wait} minute(s)`, { legacyStatus: 403 });
  }
  const acct = email.length <= 320 ? await s.users.forgotByEmail(email) : undefined;
  const good = acct
    ? await s.users.checkForgot(acct.id, answer)
    : safeEqual('\u0000no account', normalizeAnswer(answer)) && false;
  if (!good || !acct) {
    s.forgotFailures.remember(key, now);
    await s.bans.recordFailure(ctx.req.source.ip, 'password reset');
    return fail(WRONG_ANSWER, { legacyStatus: 403 });
  }
  s.forgotFailures.forget(key);
  let password = randomPassword();
  while (passwordProblem(password, acct.username, 'password')) password = randomPassword();
  await s.users.setPassword(acct.id, password);
  s.log.info({ user: acct.username, ip: ctx.req.source.ip }, 'password reset by the forgotten-password answer');
  await resetNotice(ctx, acct, email);
  return ok(`password reset for ${acct.username}: new password ${password}`, {
    fields: { username: acct.username, password },
  });
}

/**
 * With e-mail configured (smtphost, smtpfrom), the account's e-mail learns that its password was reset (never the
 * password): a reset the owner did not ask for is noticed. A notice that cannot be queued does not undo the reset.
 */
async function resetNotice(ctx: CommandContext, acct: { id: number; username: string }, email: string) {
  const s = ctx.services;
  const from = s.config.options.smtpfrom;
  if (!s.mailer.configured || !from) return;
  const body =
    `The password of the account ${acct.username} was reset with the forgotten-password answer ` +
    `(from ${ctx.req.source.ip}, ${new Date().toISOString()}).\nIf you did not do this, contact your provider.`;
  await s.mailer
    .enqueue({ userId: acct.id, from, to: email, subject: 'Your password was reset', body, ref: 'password-reset' })
    .catch((e: unknown) => s.log.warn({ user: acct.username, err: (e as Error).message }, 'reset notice not queued'));
}

export const passwordCommands: CommandDef[] = [
  {
    name: 'changepwd',
    params: ['newpassword', 'oldpassword'],
    level: 12,
    description:
      'change your password (newpassword, oldpassword); ' +
      'managers: username=… resets an account below them without oldpassword',
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
];
