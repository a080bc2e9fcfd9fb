/**
 * Call control: callback, p2p (RFC 3725 flow I; the work is in src/sip/callcontrol/controller.ts).
 * Both answer at once with the call id; the outcome is visible afterwards (CDRs of legs 'a' and 'b' under that
 * callid, the users' status 3/4 while the call lives, the live calls of `info` / `quickstat`).
 */
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { User } from '../../domain/accounts/users.js';
import { isAdminType, UserType } from '../../domain/accounts/types.js';
import { DomainError } from '../../domain/errors.js';
import type { BridgedCall } from '../../sip/callcontrol/controller.js';

/**
 * The paying account: the caller, or `username` when the caller may manage them (admins: anyone; owners/resellers:
 * their subtree).
 */
async function payer(ctx: CommandContext, p: Record<string, string>, what: string): Promise<User> {
  const caller = ctx.caller.user;
  if (!caller) throw new ApiError(`${what} needs a user (authid)`, 403);
  const name = (p.username ?? '').trim();
  if (!name || name === caller.username) return caller;
  const mayManage = isAdminType(caller.type) || caller.type === UserType.owner || caller.type === UserType.reseller;
  const denied = new ApiError(
    `${what}: you may only place calls for your own account${mayManage ? ' or users below you' : ''} ` +
      `(username=${name.slice(0, 64)})`,
    403,
  );
  if (!mayManage) throw denied;
  const u = await ctx.services.users.byUsername(name);
  if (!isAdminType(caller.type)) {
    if (!u || !(await ctx.services.users.isInSubtree(caller.id, u.id))) throw denied;
  }
  if (!u) throw new ApiError(`${what}: user "${name.slice(0, 64)}" not found`, 404);
  if (!u.enabled) throw new ApiError(`${what}: user "${u.username}" is disabled`, 403);
  return u;
}

const clean = (v: string | undefined) => (v ?? '').trim();
const SIP_DISABLED = 'the SIP stack is disabled (usesip=false)';

async function place(
  ctx: CommandContext,
  what: 'callback' | 'p2p',
  user: User,
  a: string,
  b: string,
): Promise<ApiResult> {
  const control = ctx.services.callControl;
  if (!control) return fail(SIP_DISABLED, { legacyStatus: 412 });
  let call: BridgedCall;
  try {
    call = await control.start(what, user, a, b);
  } catch (e) {
    if (e instanceof DomainError) return fail(`${what}: ${e.message}`, { legacyStatus: 412 });
    throw e;
  }
  ctx.services.log.info(
    { callid: call.callid, user: user.username, a: call.a.plan.callee, b: call.b.plan.callee, kind: what },
    'call control call started',
  );
  return ok(`${what} ${call.callid} started: calling ${call.a.plan.callee}, then ${call.b.plan.callee}`, {
    fields: { callid: call.callid, anum: call.a.plan.callee, bnum: call.b.plan.callee, username: user.username },
  });
}

/** May the caller see a call placed for `userId`: their own, admins any, owners/resellers their subtree. */
async function maySeeCall(ctx: CommandContext, userId: number): Promise<boolean> {
  const caller = ctx.caller.user;
  if (!caller) return false;
  if (caller.id === userId || isAdminType(caller.type)) return true;
  if (caller.type !== UserType.owner && caller.type !== UserType.reseller) return false;
  return ctx.services.users.isInSubtree(caller.id, userId);
}

const iso = (t: number | undefined) => (t ? new Date(t).toISOString() : '');

export const callControlCommands: CommandDef[] = [
  {
    name: 'callstatus',
    params: ['callid'],
    level: 12,
    description:
      'progress of a callback/p2p call by the callid its answer gave: initiated, ringing, a-answered, answered, ' +
      'completed, busy, no-answer, failed (with the SIP status), cancelled; kept an hour after the last change',
    run: async (ctx, p) => {
      const control = ctx.services.callControl;
      if (!control) return fail(SIP_DISABLED, { legacyStatus: 412 });
      const callid = clean(p.callid);
      if (!callid) return fail('callstatus needs callid (as answered by callback or p2p)', { legacyStatus: 421 });
      const pr = await control.progress.get(callid);
      // a call of another account is answered as unknown: whether it exists is not told
      if (!pr || !(await maySeeCall(ctx, pr.userId)))
        return fail(`callstatus: no call ${callid.slice(0, 80)} (unknown, or more than an hour old)`, {
          legacyStatus: 404,
        });
      const detail = pr.leg && pr.sipStatus ? ` (leg ${pr.leg}: ${pr.sipStatus})` : pr.leg ? ` (leg ${pr.leg})` : '';
      return ok(`${pr.callid} ${pr.state}${detail}`, {
        fields: {
          callid: pr.callid,
          kind: pr.kind,
          username: pr.username,
          state: pr.state,
          leg: pr.leg,
          sip_status: pr.sipStatus,
          cause: pr.cause,
          started: iso(pr.startedAt),
          answered: iso(pr.answeredAt),
          ended: iso(pr.endedAt),
          a_number: pr.a.number,
          a_status: pr.a.status,
          b_number: pr.b.number,
          b_status: pr.b.status,
        },
        columns: ['state', 'leg', 'at'],
        rows: pr.history.map((h) => ({ state: h.state, leg: h.leg, at: iso(h.at) })),
      });
    },
  },
  {
    name: 'callback',
    params: ['num', 'bnum'],
    // the vendor's example passes the number to call back in anum (the A-number); num wins when both are given
    fallbacks: { num: ['anum'] },
    level: 12,
    description:
      'callback: the server calls you at num (else your registered SIP phone, else your first callback number), ' +
      'then the destination bnum, and bridges the two; without bnum the destination is your registered SIP phone ' +
      '(num needed then). Both legs billed to you; answers the callid at once. Admins/resellers: username=',
    run: async (ctx, p) => {
      const user = await payer(ctx, p, 'callback');
      if (!ctx.services.sip || !ctx.services.callControl) return fail(SIP_DISABLED, { legacyStatus: 412 });
      const registered = ctx.services.sip.location.lookup(user.username).length > 0;
      let a = clean(p.num);
      let b = clean(p.bnum);
      if (!a) {
        if (registered && b) a = user.username;
        else a = (await ctx.services.numbers.listCallbackNumbers(user.id))[0]?.number ?? '';
      }
      if (!a)
        return fail(
          'callback: no number to reach you: give num, register a SIP phone or add a callback number ' +
            '(addcallbacknumber)',
          { legacyStatus: 421 },
        );
      if (!b) {
        if (registered && a !== user.username) b = user.username;
        else return fail('callback: bnum (the destination to connect you to) is missing', { legacyStatus: 421 });
      }
      return place(ctx, 'callback', user, a, b);
    },
  },
  {
    name: 'p2p',
    params: ['bnum', 'cnum'],
    level: 12,
    description:
      'phone to phone: calls bnum, then cnum, bridges them; both legs billed to you (also anum+bnum); answers the ' +
      'callid at once. Admins/resellers: username=',
    run: async (ctx, p) => {
      const user = await payer(ctx, p, 'p2p');
      let first = clean(p.bnum);
      let second = clean(p.cnum);
      if (!second && clean(p.anum)) {
        first = clean(p.anum);
        second = clean(p.bnum);
      }
      if (!first || !second)
        return fail('p2p: bnum (the first number) and cnum (the second number) are needed', { legacyStatus: 421 });
      if (first === second) return fail('p2p: bnum and cnum are the same number', { legacyStatus: 412 });
      return place(ctx, 'p2p', user, first, second);
    },
  },
];
