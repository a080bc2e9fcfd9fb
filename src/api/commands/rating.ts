/** Rating commands: rating, callrating, gencdr. */
import { randomUUID } from 'node:crypto';
import { ok, fail, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { User } from '../../domain/accounts/users.js';
import { may, mayOnOwner } from '../../domain/accounts/access.js';
import { callerOf } from './target.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { formatPrice } from '../../domain/rating/rate.js';
import { InvalidNumberError, type Quote } from '../../domain/rating/service.js';

const GENCDR_MAX = 10_000;

/** The user a `username` parameter names (default: the caller), if the caller may see them. */
async function seenUser(ctx: CommandContext, caller: User, username: string | undefined): Promise<User> {
  if (!username || username === caller.username) return caller;
  const u = await ctx.services.users.byUsername(username);
  if (!u || !(await may(ctx.services.users, caller, 'see', u)))
    throw new ApiError(`username: no user "${username}" that you may see`, 404);
  return u;
}

function rateFields(q: Quote): Record<string, string | number> {
  const r = q.rate;
  return {
    bnum: q.number,
    prefix: r.prefix,
    destination: r.destination,
    price: formatPrice(r.price),
    connectfee: formatAmount(r.connectfee),
    minduration: r.minduration,
    increment: r.increment,
    currency: r.currency,
  };
}

const rateText = (q: Quote) =>
  `${formatPrice(q.rate.price)} ${q.rate.currency}/min to ${q.rate.destination || q.rate.prefix} (prefix ` +
  `${q.rate.prefix})`;

function intParam(v: string | undefined, name: string, min: number, max: number, def: number): number {
  if (v === undefined || v.trim() === '') return def;
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < min || Number(v) > max)
    throw new ApiError(`${name}: expected a whole number from ${min} to ${max}, got "${v}"`, 412);
  return Number(v);
}

export const ratingCommands: CommandDef[] = [
  {
    name: 'normalizechk',
    params: ['called', 'caller', 'country'],
    level: 6,
    description:
      'check number normalization (called, caller, country): the E.164 digits a number is rated and routed by',
    run: (ctx, p) => {
      const country = (p.country ?? '').replace(/^\+/, '');
      if (country && !/^\d{1,4}$/.test(country))
        return fail('country: expected a calling code such as 36 or 1', { legacyStatus: 421 });
      const out: Record<string, string> = {};
      for (const k of ['called', 'caller'] as const) {
        if (!p[k]) continue;
        try {
          out[k] = ctx.services.rating.normalize(p[k]!, country);
        } catch (e) {
          // the answer names which of the two numbers is wrong
          if (e instanceof InvalidNumberError) return fail(`${k}: ${e.message}`, { legacyStatus: 421 });
          throw e;
        }
      }
      if (!Object.keys(out).length)
        return fail('normalizechk needs called (and optionally caller, country)', { legacyStatus: 421 });
      return ok(
        Object.entries(out)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', '),
        { fields: out },
      );
    },
  },
  {
    name: 'rating',
    params: ['bnum'],
    // the vendor's example passes the number to rate in anum; bnum (the destination) wins when both are given
    fallbacks: { bnum: ['anum'] },
    level: 12,
    description: 'rate request: the price per minute the caller pays to bnum (longest prefix of their tariff plan)',
    run: async (ctx, p) => {
      const user = callerOf(ctx, 'rating', 'a user (authid)');
      const bnum = (p.bnum ?? '').trim();
      if (!bnum) return fail('bnum: the number to rate is missing', { legacyStatus: 421 });
      const q = await ctx.services.rating.quote(user, bnum);
      return ok(rateText(q), { fields: rateFields(q) });
    },
  },
  {
    name: 'callrating',
    params: ['username', 'callid'],
    level: 12,
    description:
      'call rating details returning credit, maxduration and rating: for a destination (bnum) the credit, the ' +
      'longest affordable call and the rate; for a finished call (callid) its CDR rating',
    run: async (ctx, p) => {
      const s = ctx.services;
      const caller = callerOf(ctx, 'callrating', 'a user (authid)');
      const user = await seenUser(ctx, caller, p.username?.trim());
      const bnum = (p.bnum ?? '').trim();
      const callid = (p.callid ?? '').trim();
      if (bnum) {
        const q = await ctx.services.rating.quote(user, bnum);
        const b = await s.ledger.balance(user.id);
        if (!b) throw new ApiError('user not found', 404);
        if (b.currency !== q.rate.currency)
          return fail(`the rate to ${q.number} is in ${q.rate.currency} but the account is in ${b.currency}`, {
            legacyStatus: 412,
          });
        const maxduration = s.rating.maxDuration(b.credit, q.rate);
        const credit = formatAmount(b.credit);
        return ok(`credit ${credit} ${b.currency}, maxduration ${maxduration} s, ${rateText(q)}`, {
          fields: { credit, currency: b.currency, maxduration, ...rateFields(q), username: user.username },
        });
      }
      if (callid) {
        // a finished call is looked up in the CDRs (live calls are not rated here)
        const cdrs = await s.cdrs.byCallId(callid);
        let visible = null;
        for (const c of cdrs) {
          if ((p.username ? c.userid === user.id : true) && (await mayOnOwner(s.users, caller, 'see', c.userid))) {
            visible = c;
            break;
          }
        }
        if (!visible)
          return fail(
            `call "${callid}" not found (no live call and no ` +
              `CDR${p.username ? ` of ${user.username}` : ''} with this callid)`,
            { legacyStatus: 404 },
          );
        const owner = visible.userid === user.id ? user : await s.users.byId(visible.userid);
        const b = await s.ledger.balance(visible.userid);
        const cost = formatAmount(visible.cost);
        return ok(
          `call ${callid}${visible.leg ? '/' + visible.leg : ''} to ${visible.callee}: ${visible.duration} s, ` +
            `billed ${visible.billed} s, cost ${cost} ${visible.currency} (${visible.reason})`,
          {
            fields: {
              callid,
              leg: visible.leg,
              username: owner?.username ?? '',
              bnum: visible.callee,
              duration: visible.duration,
              billed: visible.billed,
              cost,
              currency: visible.currency,
              reason: visible.reason,
              credit: b ? formatAmount(b.credit) : '',
              maxduration: 0,
            },
          },
        );
      }
      return fail('bnum or callid: give the destination to rate (bnum) or the call (callid)', { legacyStatus: 421 });
    },
  },
  {
    name: 'gencdr',
    params: ['count', 'username', 'bnum', 'duration', 'mindur', 'maxdur'],
    level: 6,
    description:
      'generate test CDRs, each rated and charged like a real call: count (1-10000, default 1), username (caller ' +
      'account), bnum (destination; default random numbers of the plan), duration (seconds, default 60) or ' +
      'mindur/maxdur (random)',
    run: async (ctx, p) => {
      const s = ctx.services;
      const caller = callerOf(ctx, 'gencdr', 'a user (authid)');
      const count = intParam(p.count, 'count', 1, GENCDR_MAX, 1);
      const username = (p.username ?? '').trim();
      if (!username)
        return fail('username: the caller account of the generated calls is missing', { legacyStatus: 404 });
      const user = await s.users.byUsername(username);
      if (!user || !(await may(s.users, caller, 'act', user)))
        return fail(`username: no user "${username}" that you may see`, { legacyStatus: 404 });
      let fixed: number | undefined;
      let mindur = 0;
      let maxdur = 0;
      if (p.mindur !== undefined || p.maxdur !== undefined) {
        mindur = intParam(p.mindur, 'mindur', 0, 86400, 0);
        maxdur = intParam(p.maxdur, 'maxdur', 0, 86400, Math.max(mindur, 300));
        if (maxdur < mindur) return fail(`maxdur (${maxdur}) is less than mindur (${mindur})`);
      } else fixed = intParam(p.duration, 'duration', 0, 86400, 60);
      const bnum = (p.bnum ?? '').trim();
      let planId: number | undefined;
      let fixedQuote: Quote | undefined;
      if (bnum) {
        const q = await ctx.services.rating.quote(user, bnum);
        if (q.rate.currency !== user.currency)
          return fail(
            `the rate to ${q.number} is in ${q.rate.currency} but ${user.username}'s account is in ${user.currency}`,
          );
        fixedQuote = q;
      } else {
        const plan = await s.rating.planFor(user.id);
        if (!plan || plan.index.size === 0)
          return fail(`bnum: missing, and ${user.username} has no tariff plan with rates to pick numbers from`, {
            legacyStatus: 421,
          });
        planId = plan.id;
      }
      let total = 0;
      let exhausted = 0;
      let billed = 0;
      for (let i = 0; i < count; i++) {
        const duration = fixed ?? mindur + Math.floor(Math.random() * (maxdur - mindur + 1));
        const end = Date.now();
        const start = end - duration * 1000;
        const r = await s.cdrs.recordCall({
          callid: `gencdr-${randomUUID()}`,
          userId: user.id,
          caller: user.username,
          callee: fixedQuote ? fixedQuote.number : s.rating.randomNumber(planId!)!,
          rate: fixedQuote?.rate,
          route: 'gencdr',
          startAt: start,
          connectAt: duration > 0 ? start : null,
          endAt: end,
          duration,
        });
        total += r.charged;
        billed += r.cdr.billed;
        if (r.cdr.reason.startsWith('credit exhausted')) exhausted++;
      }
      s.log.info({ by: caller.username, user: user.username, count, cost: total }, 'gencdr');
      const cost = formatAmount(total);
      return ok(
        `${count} CDRs generated for ${user.username}, total cost ${cost} ` +
          `${user.currency}${exhausted ? ` (${exhausted} ran out of credit)` : ''}`,
        {
          fields: { count, cost, currency: user.currency, billed, exhausted, username: user.username },
        },
      );
    },
  },
];
