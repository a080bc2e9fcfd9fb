/**
 * Money commands: transfercredit, charge (recharge PIN), addcredit, cccharge (card payment), pingen (PIN batch).
 * The work is done by MoneyService (src/domain/billing/money.ts); these parse, check who may do what, and answer.
 */
import { ok, fail, ApiError } from '../types.js';
import type { CommandDef } from '../registry.js';
import { callerOf } from './target.js';
import { may } from '../../domain/accounts/access.js';
import { isAdminType } from '../../domain/accounts/types.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { MoneyError, parseMoneyAmount } from '../../domain/billing/money.js';
import { generatePins } from '../../domain/billing/pins.js';

/** Most PINs one pingen call makes (larger batches: the `voxswitch pins generate` CLI). */
export const PINGEN_API_MAX = 10_000;

export const moneyCommands: CommandDef[] = [
  {
    name: 'transfercredit',
    params: ['username', 'credit'],
    level: 12,
    description:
      'send credit to another user (username, credit): admins to anyone, owners/resellers within their subtree, ' +
      'other users to accounts with the same parent or to their parent; same currency only',
    run: async (ctx, p) => {
      const from = callerOf(ctx, 'transfercredit');
      const target = (p.username ?? '').trim();
      if (!target) return fail('transfercredit needs username (the receiver) and credit (the amount)');
      const amount = parseMoneyAmount('credit', p.credit);
      if (target.toLowerCase() === from.username.toLowerCase()) {
        const hint =
          ctx.caller.via === 'trusted-ip' && ctx.req.params.authid === undefined
            ? ' (from a trusted address name the payer with authid: username names the receiver)'
            : '';
        return fail(`cannot transfer credit to yourself${hint}`);
      }
      const r = await ctx.services.money.transfer(from, target, amount);
      const a = formatAmount(r.amount);
      const bal = formatAmount(r.fromBalance);
      return ok(`transferred ${a} ${r.currency} to ${r.to.username}; your balance ${bal} ${r.currency}`, {
        fields: { credit: a, currency: r.currency, username: r.to.username, balance: bal, ref: r.ref },
      });
    },
  },
  {
    name: 'charge',
    params: ['pin'],
    // the vendor's example passes the recharge PIN in anum; pin wins when both are given
    fallbacks: { pin: ['anum'] },
    level: 12,
    description:
      'recharge using recharge PIN (pin): the PIN value is added to your credit once; wrong PINs count towards an ' +
      'IP ban',
    run: async (ctx, p) => {
      const user = callerOf(ctx, 'charge');
      if (!(p.pin ?? '').trim()) return fail('charge needs pin (the recharge PIN)', { legacyStatus: 420 });
      try {
        const r = await ctx.services.money.chargePin(user.id, p.pin!, 'charge', user.id);
        const a = formatAmount(r.amount);
        const bal = formatAmount(r.balance);
        ctx.services.log.info({ user: user.username, pin: r.pinId, amount: a, currency: r.currency }, 'PIN recharge');
        return ok(`charged ${a} ${r.currency}; your balance ${bal} ${r.currency}`, {
          fields: { credit: a, currency: r.currency, balance: bal },
        });
      } catch (e) {
        if (e instanceof MoneyError && e.message === 'invalid PIN')
          await ctx.services.bans.recordFailure(ctx.req.source.ip, 'PIN');
        throw e;
      }
    },
  },
  {
    name: 'addcredit',
    params: ['pin', 'username', 'credit', 'reason'],
    level: 6,
    reqIp: 1,
    description:
      'add credit (only from trusted IP by default): username (or bnum/anum) and credit (negative to correct, never ' +
      'below zero), or pin to apply a recharge PIN to username; reason is kept in the ledger entry',
    run: async (ctx, p) => {
      const caller = callerOf(ctx, 'addcredit');
      let name = (p.username ?? p.bnum ?? p.anum ?? p.u_username ?? '').trim();
      let pin = (p.pin ?? '').trim();
      const hasCredit = (p.credit ?? '').trim() !== '';
      // the document's form `pin=USERNAME&credit=AMOUNT`: with credit and no other account name, pin names the
      // account; otherwise pin is a recharge PIN applied to username
      if (!name && pin && hasCredit) [name, pin] = [pin, ''];
      if (!name) return fail('addcredit needs username (or bnum) with credit=AMOUNT or pin=PIN');
      if (pin && hasCredit) return fail('addcredit: give either credit or pin, not both');
      if (!pin && !hasCredit) return fail('addcredit needs credit=AMOUNT (or pin=PIN)');
      const target = await ctx.services.users.byUsername(name);
      if (!target) throw new ApiError(`user ${name} not found`, 404);
      if (!(await may(ctx.services.users, caller, 'manage', target)))
        throw new ApiError(`you may not add credit to ${target.username}`, 403);
      const r = pin
        ? await ctx.services.money.chargePin(target.id, pin, 'addcredit', caller.id)
        : await ctx.services.money.addCredit(
            target.id,
            parseMoneyAmount('credit', p.credit, true),
            caller.id,
            ledgerReason(p.reason),
          );
      const a = formatAmount(r.amount);
      const bal = formatAmount(r.balance);
      ctx.services.log.info(
        { user: target.username, amount: a, currency: r.currency, by: caller.username, pin: !!pin },
        'addcredit',
      );
      return ok(
        `${r.amount < 0 ? 'removed' : 'added'} ${formatAmount(Math.abs(r.amount))} ${r.currency} ` +
          `${r.amount < 0 ? 'from' : 'to'} ${target.username}; balance ${bal} ${r.currency}`,
        {
          fields: { username: target.username, credit: a, currency: r.currency, balance: bal, ref: r.ref },
        },
      );
    },
  },
  {
    name: 'cccharge',
    params: ['cardnum', 'expireyear', 'expmonth', 'ccv2', 'ammount'],
    level: 12,
    description:
      'credit card recharge (cardnum, expireyear, expmonth, ccv2, ammount) through the card processor ' +
      '(cardprocessorurl)',
    run: async (ctx, p) => {
      const user = callerOf(ctx, 'cccharge');
      const money = ctx.services.money;
      money.processor(); // a clear error before anything else when no processor is configured
      const number = (p.cardnum ?? '').replace(/[\s-]/g, '');
      if (!/^\d{12,19}$/.test(number)) return fail('cardnum: expected 12-19 digits');
      const yRaw = (p.expireyear ?? '').trim();
      const mRaw = (p.expmonth ?? '').trim();
      if (!/^\d{2}$|^\d{4}$/.test(yRaw)) return fail('expireyear: expected a year such as 2029 or 29');
      if (!/^\d{1,2}$/.test(mRaw)) return fail('expmonth: expected 1 to 12');
      const cvv = (p.ccv2 ?? '').trim();
      if (!/^\d{3,4}$/.test(cvv)) return fail('ccv2: expected 3 or 4 digits');
      const amount = parseMoneyAmount('ammount', p.ammount ?? p.amount ?? p.credit);
      const expYear = yRaw.length === 2 ? 2000 + Number(yRaw) : Number(yRaw);
      const r = await money.cardCharge(user, { number, expYear, expMonth: Number(mRaw), cvv }, amount);
      const a = formatAmount(r.amount);
      const bal = formatAmount(r.balance);
      ctx.services.log.info(
        { user: user.username, amount: a, currency: r.currency, transaction: r.transactionId },
        'card recharge',
      );
      return ok(`charged ${a} ${r.currency} to the card; your balance ${bal} ${r.currency}`, {
        fields: { credit: a, currency: r.currency, balance: bal, transactionid: r.transactionId },
      });
    },
  },
  {
    name: 'pingen',
    params: ['count', 'credit', 'currency', 'expire', 'name'],
    level: 6,
    description:
      `generate a batch of recharge PINs (count up to ${PINGEN_API_MAX}, credit = value of each, ` +
      `currency, expire = days, name); answers the PINs once`,
    run: async (ctx, p) => {
      const caller = callerOf(ctx, 'pingen');
      if (!isAdminType(caller.type)) throw new ApiError('pingen: only admins may create recharge PINs', 403);
      const countRaw = (p.count ?? '').trim();
      if (!/^\d{1,7}$/.test(countRaw) || Number(countRaw) < 1 || Number(countRaw) > PINGEN_API_MAX) {
        return fail(`count: expected 1 to ${PINGEN_API_MAX} (larger batches: voxswitch pins generate)`);
      }
      const value = parseMoneyAmount('credit', p.credit ?? p.value);
      const currency = (p.currency ?? '').trim().toUpperCase() || caller.currency;
      let expiresAt: number | null = null;
      const exp = (p.expire ?? p.expires ?? '').trim();
      if (exp) {
        if (!/^\d{1,5}$/.test(exp) || Number(exp) < 1 || Number(exp) > 36500)
          return fail('expire: expected a number of days from 1 to 36500');
        expiresAt = Date.now() + Number(exp) * 86_400_000;
      }
      const { batchId, pins } = await generatePins(ctx.services.storage.db, {
        count: Number(countRaw),
        value,
        currency,
        expiresAt,
        name: p.name ?? '',
        createdBy: caller.id,
      });
      const v = formatAmount(value);
      ctx.services.log.info(
        { batch: batchId, count: pins.length, value: v, currency, by: caller.username },
        'PIN batch generated',
      );
      return ok(`${pins.length} PINs of ${v} ${currency} generated (batch ${batchId})`, {
        fields: {
          batchid: batchId,
          count: pins.length,
          credit: v,
          currency,
          expires: expiresAt ? new Date(expiresAt).toISOString() : '',
        },
        columns: ['pin'],
        rows: pins.map((pin) => ({ pin })),
      });
    },
  },
];

/** The ledger reason of an addcredit: `addcredit`, or `addcredit: ` and the caller's words (one line, 120 chars). */
function ledgerReason(reason: string | undefined): string {
  const words = (reason ?? '')
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim()
    .slice(0, 120);
  return words ? `addcredit: ${words}` : 'addcredit';
}
