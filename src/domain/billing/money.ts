/**
 * Money operations on the ledger: transfers between accounts, recharge PINs, admin credit, card payments.
 * Every change of credit is a ledger entry written in the same transaction as whatever it belongs to (the
 * PIN marked used, the other side of a transfer), so credit is neither created nor lost by concurrent calls.
 */
import { randomUUID } from 'node:crypto';
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';
import { InsufficientCredit, NoSuchAccount, type Ledger } from './ledger.js';
import type { UserService, User } from '../accounts/users.js';
import { may } from '../accounts/access.js';
import { formatAmount, parseAmount } from './amount.js';
import { DomainError, type ErrorKind } from '../errors.js';
import { hashPin, normalizePin } from './pins.js';
import {
  CardProcessorError,
  HttpCardProcessor,
  luhnValid,
  type CardData,
  type CardProcessor,
} from './cardprocessor.js';

/** Largest amount one operation may move: 1,000,000,000 units (keeps every sum a safe integer). */
export const MAX_AMOUNT = 1_000_000_000 * 1_000_000;

export type MoneyErrorKind =
  'input' | 'denied' | 'notfound' | 'currency' | 'insufficient' | 'pin' | 'processor' | 'declined' | 'config';

/** A refused money operation; the message is fit for the API answer (never holds secrets or card data). */
export class MoneyError extends DomainError {
  constructor(
    message: string,
    /** The money-specific reason (the DomainError kind is derived from it). */
    readonly reason: MoneyErrorKind,
    legacyStatus = 412,
  ) {
    super(message, MONEY_KINDS[reason], { legacyStatus });
  }
}

const MONEY_KINDS: Record<MoneyErrorKind, ErrorKind> = {
  input: 'input',
  denied: 'denied',
  notfound: 'notfound',
  currency: 'conflict',
  insufficient: 'insufficient',
  pin: 'denied',
  processor: 'unavailable',
  declined: 'denied',
  config: 'config',
};

/** Parses an amount text: positive (or, with allowNegative, non-zero), at most 6 decimals, at most MAX_AMOUNT. */
export function parseMoneyAmount(name: string, raw: string | undefined, allowNegative = false): number {
  const s = (raw ?? '').trim();
  if (!s) throw new MoneyError(`${name}: missing (an amount such as 5.00)`, 'input');
  const v = parseAmount(s);
  if (v === undefined)
    throw new MoneyError(
      `${name}: "${s.slice(0, 40)}" is not an amount (digits with at most 6 decimals, such as 5.25)`,
      'input',
    );
  if (v === 0) throw new MoneyError(`${name}: must not be zero`, 'input');
  if (v < 0 && !allowNegative) throw new MoneyError(`${name}: must be above zero`, 'input');
  if (Math.abs(v) > MAX_AMOUNT) throw new MoneyError(`${name}: at most ${formatAmount(MAX_AMOUNT)}`, 'input');
  return v;
}

export interface TransferResult {
  amount: number;
  currency: string;
  to: User;
  fromBalance: number;
  toBalance: number;
  ref: string;
}

export interface CreditResult {
  amount: number;
  currency: string;
  balance: number;
  ref: string;
}

/** ", of which X is reserved by live calls" when reservations stood in the way of a debit. */
function reservedPart(reserved: number): string {
  return reserved > 0 ? `, of which ${formatAmount(reserved)} is reserved by live calls` : '';
}

export class MoneyService {
  /** The card processor to use; undefined: built from cardprocessorurl/cardprocessorkey on each charge. */
  cardProcessor?: CardProcessor;
  /** How long the HTTP card processor may take. */
  cardTimeoutMs = 10_000;

  /** The currencies of a transfer's two accounts (on every transfer): compiled once. */
  private readonly currenciesQuery: CompiledQuery;

  constructor(
    readonly db: Kysely<Database>,
    readonly ledger: Ledger,
    readonly users: UserService,
    readonly config: ConfigStore,
  ) {
    this.currenciesQuery = db.selectFrom('tb_users').select(['id', 'currency']).where('id', 'in', [0, 0]).compile();
  }

  /**
   * Who may send credit to whom: the `pay` row of the hierarchy rule (accounts/access.ts): admins to anyone,
   * owners and resellers to accounts in their subtree, everyone else to their parent and to accounts with the
   * same parent; never to oneself. Disabled receivers are refused by transfer().
   */
  mayPay(from: User, to: User): Promise<boolean> {
    return may(this.users, from, 'pay', to);
  }

  /** Sends `amount` from one account to another (by username): one transaction, two entries with one reference. */
  async transfer(from: User, toUsername: string, amount: number, actor = from.id): Promise<TransferResult> {
    if (!Number.isSafeInteger(amount) || amount <= 0 || amount > MAX_AMOUNT)
      throw new MoneyError('credit: must be above zero', 'input');
    const name = toUsername.trim();
    if (!name) throw new MoneyError('username: missing (the account to send credit to)', 'input');
    const to = await this.users.byUsername(name);
    if (!to) throw new MoneyError(`user ${name} not found`, 'notfound', 404);
    if (to.id === from.id) throw new MoneyError('cannot transfer credit to yourself', 'input');
    if (!to.enabled) throw new MoneyError(`user ${to.username} is disabled`, 'denied', 403);
    if (!(await this.mayPay(from, to)))
      throw new MoneyError(`you may not send credit to ${to.username}`, 'denied', 403);
    const ref = `tr:${randomUUID()}`;
    try {
      return await this.ledger.transaction(async (trx) => {
        const { rows } = await trx.executeQuery<{ id: number; currency: string }>({
          ...this.currenciesQuery,
          parameters: [from.id, to.id],
        });
        const cur = new Map(rows.map((r) => [Number(r.id), r.currency]));
        const fc = cur.get(from.id);
        const tc = cur.get(to.id);
        if (fc === undefined || tc === undefined) throw new MoneyError('account not found', 'notfound', 404);
        if (fc !== tc)
          throw new MoneyError(
            `different currencies: your account is in ${fc}, ${to.username}'s in ${tc}; transfers need the same ` +
              `currency`,
            'currency',
          );
        const { fromAfter, toAfter } = await this.ledger.transferIn(trx, {
          from: from.id,
          to: to.id,
          amount,
          reason: 'transfercredit',
          ref,
          actor,
        });
        return { amount, currency: fc, to, fromBalance: fromAfter, toBalance: toAfter, ref };
      });
    } catch (e) {
      if (e instanceof InsufficientCredit) {
        // read after the rollback (the refused transaction cannot answer on PostgreSQL)
        const b = await this.ledger.balance(from.id);
        const reserved = await this.ledger.reserved(from.id);
        throw new MoneyError(
          `insufficient credit: you have ${b ? `${formatAmount(b.credit)} ${b.currency}` : 'nothing'}` +
            `${reservedPart(reserved)}, the transfer needs ${formatAmount(amount)}`,
          'insufficient',
        );
      }
      if (e instanceof NoSuchAccount) throw new MoneyError('account not found', 'notfound', 404);
      throw e;
    }
  }

  /**
   * Applies a recharge PIN to an account: the PIN is marked used (a conditional update that must hit exactly
   * one unused row) and its value credited, in one transaction. Errors: 'invalid PIN' (unknown/malformed),
   * then, only for a PIN that exists: 'PIN already used', 'PIN expired', a currency mismatch.
   */
  async chargePin(
    userId: number,
    pinText: string,
    reason = 'charge',
    actor = userId,
  ): Promise<CreditResult & { pinId: number }> {
    const pin = normalizePin(pinText);
    if (!pin) throw new MoneyError('invalid PIN', 'pin', 420);
    const row = await this.db.selectFrom('tb_pins').selectAll().where('pin_hash', '=', hashPin(pin)).executeTakeFirst();
    if (!row) throw new MoneyError('invalid PIN', 'pin', 420);
    const pinId = Number(row.id);
    const value = Number(row.value);
    const now = Date.now();
    if (row.used_at != null) throw new MoneyError('PIN already used', 'pin', 420);
    if (row.expires_at != null && Number(row.expires_at) <= now) throw new MoneyError('PIN expired', 'pin', 420);
    const ref = `pin:${pinId}`;
    try {
      return await this.ledger.transaction(async (trx) => {
        const u = await trx
          .selectFrom('tb_users')
          .select(['currency', 'enabled'])
          .where('id', '=', userId)
          .executeTakeFirst();
        if (!u) throw new MoneyError('account not found', 'notfound', 404);
        if (u.currency !== row.currency)
          throw new MoneyError(`PIN is for ${row.currency} but the account is in ${u.currency}`, 'currency', 420);
        const r = await trx
          .updateTable('tb_pins')
          .set({ used_at: now, used_by: userId })
          .where('id', '=', pinId)
          .where('used_at', 'is', null)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) throw new MoneyError('PIN already used', 'pin', 420);
        const balance = await this.ledger.postIn(trx, { userId, amount: value, reason, ref, actor });
        return { amount: value, currency: u.currency, balance, ref, pinId };
      });
    } catch (e) {
      if (e instanceof NoSuchAccount) throw new MoneyError('account not found', 'notfound', 404);
      throw e;
    }
  }

  /** Adds (or, negative, removes) credit on an account; never below zero. */
  async addCredit(
    userId: number,
    amount: number,
    actor: number,
    reason = 'addcredit',
    ref = `ac:${randomUUID()}`,
  ): Promise<CreditResult> {
    if (!Number.isSafeInteger(amount) || amount === 0 || Math.abs(amount) > MAX_AMOUNT)
      throw new MoneyError('credit: must be a non-zero amount', 'input');
    try {
      return await this.ledger.transaction(async (trx) => {
        const balance = await this.ledger.postIn(trx, { userId, amount, reason, ref, actor });
        const u = await trx
          .selectFrom('tb_users')
          .select('currency')
          .where('id', '=', userId)
          .executeTakeFirstOrThrow();
        return { amount, currency: u.currency, balance, ref };
      });
    } catch (e) {
      if (e instanceof InsufficientCredit) {
        const b = await this.ledger.balance(userId);
        const reserved = await this.ledger.reserved(userId);
        throw new MoneyError(
          `credit: ${formatAmount(amount)} would take the balance below ` +
            `${reserved > 0 ? 'the credit reserved by live calls' : 'zero'} (balance ` +
            `${b ? `${formatAmount(b.credit)} ${b.currency}` : '0'}${reservedPart(reserved)})`,
          'insufficient',
        );
      }
      if (e instanceof NoSuchAccount) throw new MoneyError('account not found', 'notfound', 404);
      throw e;
    }
  }

  /** The configured card processor, or a clear error when none is. */
  processor(): CardProcessor {
    if (this.cardProcessor) return this.cardProcessor;
    const url = this.config.get('cardprocessorurl');
    if (!url)
      throw new MoneyError('cccharge needs a card processor: set cardprocessorurl (and cardprocessorkey)', 'config');
    return new HttpCardProcessor(url, this.config.get('cardprocessorkey'), this.cardTimeoutMs);
  }

  /**
   * Charges a card through the processor and, when approved, credits the account (reason 'cccharge', ref = the
   * processor's transaction id; a transaction id is credited at most once). Card data is validated here, passed
   * to the processor, and never stored or logged.
   */
  async cardCharge(
    user: User,
    card: CardData,
    amount: number,
    now = new Date(),
  ): Promise<CreditResult & { transactionId: string }> {
    if (!luhnValid(card.number))
      throw new MoneyError('cardnum: not a valid card number (12-19 digits passing the Luhn check)', 'input');
    if (!Number.isInteger(card.expMonth) || card.expMonth < 1 || card.expMonth > 12)
      throw new MoneyError('expmonth: expected 1 to 12', 'input');
    if (!Number.isInteger(card.expYear) || card.expYear < 2000 || card.expYear > 2100)
      throw new MoneyError('expireyear: expected a year such as 2029 (or 29)', 'input');
    const y = now.getUTCFullYear();
    const m = now.getUTCMonth() + 1;
    if (card.expYear < y || (card.expYear === y && card.expMonth < m))
      throw new MoneyError('the card has expired', 'input');
    if (!/^\d{3,4}$/.test(card.cvv)) throw new MoneyError('ccv2: expected 3 or 4 digits', 'input');
    if (!Number.isSafeInteger(amount) || amount <= 0 || amount > MAX_AMOUNT)
      throw new MoneyError('ammount: must be above zero', 'input');
    const processor = this.processor();
    const acct = await this.ledger.balance(user.id);
    if (!acct) throw new MoneyError('account not found', 'notfound', 404);
    let r;
    try {
      r = await processor.charge({
        amountMicros: amount,
        currency: acct.currency,
        card,
        reference: `cc:${randomUUID()}`,
      });
    } catch (e) {
      if (e instanceof CardProcessorError)
        throw new MoneyError(`card payment failed: ${e.message}; nothing was credited`, 'processor');
      throw new MoneyError(
        'card payment failed: the card processor could not be used; nothing was credited',
        'processor',
      );
    }
    if (!r.approved) throw new MoneyError(`card declined${r.reason ? `: ${r.reason}` : ''}`, 'declined');
    const txid = String(r.transactionId ?? '');
    if (!txid)
      throw new MoneyError('card payment failed: approved without a transaction id; nothing was credited', 'processor');
    const ref = `cc:${txid}`.slice(0, 256);
    return this.ledger.transaction(async (trx) => {
      // the entry is written first (it locks the account row), then the reference checked: a second credit
      // for the same transaction id sees the first one and rolls back
      const balance = await this.ledger.postIn(trx, {
        userId: user.id,
        amount,
        reason: 'cccharge',
        ref,
        actor: user.id,
      });
      const seen = await trx
        .selectFrom('tb_ledger')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('reason', '=', 'cccharge')
        .where('ref', '=', ref)
        .executeTakeFirstOrThrow();
      if (Number(seen.n) > 1) throw new MoneyError(`card transaction ${txid} was already credited`, 'input');
      return { amount, currency: acct.currency, balance, ref, transactionId: txid };
    });
  }
}
