/**
 * Card payments go through a card processor. Card data (number, expiry, CVV) is passed to the processor and
 * nowhere else: it is never stored, logged, or put in an error message.
 */
import { formatAmount } from './amount.js';
import { DomainError } from '../errors.js';

export interface CardData {
  number: string;
  expYear: number;
  expMonth: number;
  cvv: string;
}

export interface CardChargeRequest {
  amountMicros: number;
  currency: string;
  card: CardData;
  /** Our reference of the attempt (idempotency key for the processor). */
  reference: string;
}

export interface CardChargeResult {
  approved: boolean;
  transactionId?: string;
  reason?: string;
}

export interface CardProcessor {
  charge(req: CardChargeRequest): Promise<CardChargeResult>;
}

/** The processor could not be asked or gave no usable answer (nothing was charged as far as we know). */
export class CardProcessorError extends DomainError {
  constructor(message: string) {
    super(message, 'unavailable');
  }
}

/** Luhn check of a card number (digits only, 12-19 of them). */
export function luhnValid(number: string): boolean {
  if (!/^\d{12,19}$/.test(number)) return false;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = number.charCodeAt(number.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Removes anything that looks like a card number or CVV from a text we did not write (a processor's reason). */
export function scrubCardData(s: string): string {
  return s
    .replace(/\d[\d\s-]{4,}\d/g, '…')
    .replace(/[\x00-\x1f]/g, ' ')
    .slice(0, 200);
}

/**
 * The HTTP adapter: POST JSON to `url` with `Authorization: Bearer <key>`, a timeout (10 s by default), and an
 * answer `{approved, transaction_id, reason}`.
 */
export class HttpCardProcessor implements CardProcessor {
  constructor(
    private readonly url: string,
    private readonly key: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async charge(req: CardChargeRequest): Promise<CardChargeResult> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.key ? { authorization: `Bearer ${this.key}` } : {}),
        },
        body: JSON.stringify({
          amount: formatAmount(req.amountMicros),
          amount_micros: req.amountMicros,
          currency: req.currency,
          reference: req.reference,
          card: {
            number: req.card.number,
            exp_year: req.card.expYear,
            exp_month: req.card.expMonth,
            cvv: req.card.cvv,
          },
        }),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError')
        throw new CardProcessorError(
          `the card processor did not answer within ${Math.round(this.timeoutMs / 100) / 10} s`,
        );
      throw new CardProcessorError('the card processor could not be reached');
    }
    let body: unknown;
    try {
      body = JSON.parse((await res.text()).slice(0, 64 * 1024));
    } catch {
      body = undefined;
    }
    if (!res.ok) throw new CardProcessorError(`the card processor answered HTTP ${res.status}`);
    if (!body || typeof body !== 'object' || typeof (body as { approved?: unknown }).approved !== 'boolean') {
      throw new CardProcessorError('the card processor gave an answer without "approved"');
    }
    const b = body as { approved: boolean; transaction_id?: unknown; reason?: unknown };
    const transactionId =
      typeof b.transaction_id === 'string' || typeof b.transaction_id === 'number'
        ? String(b.transaction_id)
        : undefined;
    const reason = typeof b.reason === 'string' ? scrubCardData(b.reason) : undefined;
    if (b.approved && (!transactionId || transactionId.length > 200))
      throw new CardProcessorError('the card processor approved without a usable transaction_id');
    return { approved: b.approved, transactionId, reason };
  }
}
