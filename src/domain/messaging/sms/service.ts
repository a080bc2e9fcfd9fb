/**
 * SMS: accepting a message (encoding, parts, route, sender rules, price, the charge and the queue row in one
 * transaction), its state, the gateways, and delivery receipts. The queue worker (worker.ts) submits; the SMPP
 * transport (../smpp) carries it. Prices: each part costs the `connectfee` (the per-call charge) of the tariff row
 * the destination matches in the sender's plan, charged once when the message is accepted.
 */
import type { Logger } from 'pino';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../../storage/schema.js';
import type { Dialect } from '../../../storage/dialect.js';
import type { ConfigStore } from '../../../config/store.js';
import { DomainError } from '../../errors.js';
import { InsufficientCredit, type Ledger } from '../../billing/ledger.js';
import { formatAmount } from '../../billing/amount.js';
import type { RatingService } from '../../rating/service.js';
import type { NumberService } from '../../numbers/service.js';
import type { User } from '../../accounts/users.js';
import { encodeSms, nonGsmChars, type SmsEncoding } from './encoding.js';
import { orderSmsGateways, senderAllowed, SENDER_RE, type NewSmsGateway, type SmsGateway } from './gateways.js';
import type { SmsGatewayStore } from './store.js';
import { SmsQueue, type SmsRow } from './queue.js';
import { InboundRefused, type InboundSms, type SmsTransport } from './transport.js';
import { parseReceipt, receiptOutcome } from './receipts.js';
import { Reassembly } from './inbound.js';
import { MoCharges, type MoHandler } from './mobile.js';

/** A refused SMS (bad input, no gateway or route, credit short): nothing charged, nothing queued. */
export class SmsError extends DomainError {}

export interface SmsDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  config: ConfigStore;
  ledger: Ledger;
  rating: RatingService;
  numbers: NumberService;
  gateways: SmsGatewayStore;
  log: Logger;
}

/** Where the service announces sms.status and sms.incoming (the signed webhooks; src/domain/events). */
export interface SmsEvents {
  emit(kind: 'sms.status' | 'sms.incoming', data: Record<string, unknown>): Promise<string>;
}

export interface SendRequest {
  /** who sends and, unless an operator's message, pays (undefined: the switch itself, operator messages only) */
  user: User | undefined;
  sender: string;
  destination: string;
  text: string;
  encoding: SmsEncoding;
  /** an operator's message (asendsms): any sender, not charged */
  operator: boolean;
}

export interface Accepted {
  id: number;
  destination: string;
  encoding: SmsEncoding;
  parts: number;
  cost: number;
  currency: string;
  gateways: string[];
}

/** The gateways that may carry a message of this sender to this number, in failover order. */
export function candidatesFor(gws: readonly SmsGateway[], number: string, sender: string): SmsGateway[] {
  return orderSmsGateways(gws, number).filter((g) => (sender ? senderAllowed(g, sender) : g.defaultSender !== ''));
}

export class SmsService {
  readonly queue: SmsQueue;
  private transport: SmsTransport | undefined;
  private accepted: () => void = () => undefined;
  private changed: () => Promise<void> = async () => undefined;
  private readonly reassembly = new Reassembly();
  private mo: MoHandler | undefined;
  private readonly moCharges: MoCharges;

  /** Set by the composition root once the webhooks exist. */
  events?: SmsEvents;

  constructor(private readonly d: SmsDeps) {
    this.queue = new SmsQueue(d.db, d.dialect);
    this.moCharges = new MoCharges(d);
  }

  /** Announces a message's state as it is now in tb_sms (sms.status); a failure to queue it is logged only. */
  async statusChanged(id: number): Promise<void> {
    if (!this.events) return;
    const row = await this.queue.byId(id).catch(() => undefined);
    if (!row) return;
    const data = {
      id: row.id,
      userid: row.userid,
      from: row.sender,
      to: row.destination,
      state: row.state,
      parts: row.parts,
      gateway: row.gateway,
      cost: row.cost,
      refunded: row.refunded,
      error: row.error,
    };
    await this.events
      .emit('sms.status', data)
      .catch((e: unknown) => this.d.log.warn({ err: e, sms: id }, 'sms.status'));
  }

  /** The transport (built by the composition root), the worker's wake-up call and its gateway re-read. */
  attach(transport: SmsTransport, worker: { kick(): void; resync(): Promise<void> }): void {
    this.transport = transport;
    this.accepted = () => worker.kick();
    this.changed = () => worker.resync();
    transport.onInbound((m) => this.inbound(m));
  }

  /**
   * Where mobile-originated messages go (wired by the composition root: to a user's DID over SIP, else the API
   * over SMS); a user's message is charged to them first (mobile.ts).
   */
  onMobileOriginated(handler: MoHandler): void {
    this.mo = handler;
  }

  gateways(): Promise<SmsGateway[]> {
    return this.d.gateways.list();
  }

  async addGateway(g: NewSmsGateway): Promise<SmsGateway> {
    const out = await this.d.gateways.add(g);
    await this.changed();
    return out;
  }

  async deleteGateway(nameOrId: string): Promise<SmsGateway> {
    const out = await this.d.gateways.remove(nameOrId);
    await this.changed();
    return out;
  }

  get link(): SmsTransport | undefined {
    return this.transport;
  }

  private async ownsNumber(user: User, raw: string): Promise<boolean> {
    const digits = raw.replace(/^\+/, '');
    if ([user.did, user.phone].some((n) => n && n.replace(/\D/g, '') === digits)) return true;
    return (await this.d.numbers.cliOwner(raw).catch(() => undefined)) === user.id;
  }

  /** An answer of the switch itself (the API over SMS): not charged, UCS-2 when the text needs it. */
  async reply(to: string, from: string, text: string): Promise<Accepted> {
    const encoding = nonGsmChars(text).length ? 'ucs2' : 'gsm7';
    const sender = SENDER_RE.test(from) ? from : '';
    return this.send({ user: undefined, sender, destination: to, text, encoding, operator: true });
  }

  async send(r: SendRequest): Promise<Accepted> {
    const o = this.d.config.options;
    const user = r.user;
    if (!user && !r.operator) throw new SmsError('an account is needed to send SMS', 'denied');
    const all = await this.d.gateways.list();
    if (all.length === 0)
      throw new SmsError(
        'no SMS gateway is configured: an admin adds one with addsmsgateway (name, host, port, system_id, password)',
        'config',
      );
    const text = r.text;
    if (!text) throw new SmsError('txt: the message text is missing', 'input', { legacyStatus: 421 });
    if (r.encoding === 'gsm7') {
      const bad = nonGsmChars(text);
      if (bad.length)
        throw new SmsError(
          `txt: ${bad.length} character(s) outside the GSM 7-bit alphabet (${bad
            .slice(0, 5)
            .map((c) => JSON.stringify(c))
            .join(', ')}): send it with sendsmsunicode (UCS-2, 70 characters a message)`,
        );
    }
    const number = this.d.rating.normalize(r.destination.trim() || '', user?.country ?? '');
    const routed = orderSmsGateways(all, number);
    if (routed.length === 0)
      throw new SmsError(`bnum: no SMS route to ${number}: no enabled SMS gateway serves this prefix`, 'notfound', {
        legacyStatus: 404,
      });
    const sender = r.sender.trim();
    if (sender) {
      if (!SENDER_RE.test(sender))
        throw new SmsError('anum: the sender is up to 20 digits (optional +) or up to 11 letters and digits');
      const listed = routed.some((g) => g.allowedSenders.length > 0 && senderAllowed(g, sender));
      if (!r.operator && !listed && !(user && (await this.ownsNumber(user, sender))))
        throw new SmsError(
          `anum: sender "${sender}" is neither one of your numbers (your DID, phone or addcli numbers) nor a ` +
            'sender the SMS gateway allows',
          'denied',
        );
    }
    const gws = candidatesFor(all, number, sender);
    if (gws.length === 0)
      throw new SmsError(
        sender
          ? `anum: no SMS gateway for ${number} accepts sender "${sender}" (allowed_senders)`
          : `anum: no sender given and no SMS gateway for ${number} has a default_sender`,
      );
    const enc = encodeSms(text, r.encoding);
    const maxParts = Math.min(o.smsmaxparts, gws[0]!.maxParts || o.smsmaxparts);
    if (enc.parts.length > maxParts) {
      const unit = r.encoding === 'gsm7' ? 'septets' : 'UCS-2 characters';
      throw new SmsError(
        `txt: the message needs ${enc.parts.length} parts (${enc.units} ${unit}), more than the ${maxParts} ` +
          "allowed (option smsmaxparts / the gateway's maxparts)",
      );
    }
    let cost = 0;
    let currency = '';
    if (!r.operator && user) {
      const q = await this.d.rating.quote(user, number);
      cost = q.rate.connectfee * enc.parts.length;
      currency = q.rate.currency;
    }
    const row = {
      userid: user?.id ?? 0,
      sender,
      destination: number,
      text,
      encoding: r.encoding,
      parts: enc.parts.length,
      ref: Math.floor(Math.random() * 256),
      cost,
    };
    let id: number;
    try {
      id = await this.d.ledger.transaction(async (trx) => {
        const smsid = await this.queue.insertIn(trx, row);
        if (cost > 0 && user)
          await this.d.ledger.postIn(trx, { userId: user.id, amount: -cost, reason: 'sms', ref: `sms:${smsid}` });
        return smsid;
      });
    } catch (e) {
      if (!(e instanceof InsufficientCredit)) throw e;
      const bal = (await this.d.ledger.balance(user!.id))?.credit ?? 0;
      const free = bal - (await this.d.ledger.reserved(user!.id));
      throw new SmsError(
        `insufficient credit: the message costs ${formatAmount(cost)} ${currency} (${enc.parts.length} part(s)), ` +
          `${formatAmount(Math.max(0, free))} available`,
        'insufficient',
      );
    }
    this.d.log.info({ sms: id, user: user?.id ?? 0, to: number, parts: enc.parts.length, cost }, 'SMS accepted');
    this.accepted();
    return {
      id,
      destination: number,
      encoding: r.encoding,
      parts: enc.parts.length,
      cost,
      currency,
      gateways: gws.map((g) => g.name),
    };
  }

  /** Refunds a failed message's charge once, when smsrefundfailed is on (inside the failing transaction). */
  async refundIn(trx: Transaction<Database>, row: Pick<SmsRow, 'id' | 'userid' | 'cost'>): Promise<boolean> {
    if (!this.d.config.options.smsrefundfailed || row.cost <= 0) return false;
    if (!(await this.queue.markRefundedIn(trx, row.id))) return false;
    await this.d.ledger.postIn(trx, {
      userId: row.userid,
      amount: row.cost,
      reason: 'smsrefund',
      ref: `sms:${row.id}`,
    });
    return true;
  }

  /** Moves a message to failed (once) and refunds it by the option. */
  async fail(row: Pick<SmsRow, 'id' | 'userid' | 'cost'>, error: string): Promise<void> {
    await this.d.ledger.transaction(async (trx) => {
      if (await this.queue.finalIn(trx, row.id, 'failed', error)) await this.refundIn(trx, row);
    });
    this.d.log.info({ sms: row.id, error }, 'SMS failed');
    await this.statusChanged(row.id);
  }

  /** A deliver_sm: a delivery receipt moves its part (and, when all are final, the message); others are logged. */
  async inbound(m: InboundSms): Promise<void> {
    const receipt = (m.esmClass & 0x3c) === 0x04 || (m.esmClass & 0x3c) === 0x08;
    if (!receipt) {
      const whole = this.reassembly.add(m);
      if (!whole) return;
      if (!this.mo) return;
      let out;
      try {
        out = await this.moCharges.handle(whole, this.mo);
      } catch (e) {
        if (e instanceof InboundRefused) this.reassembly.done(whole);
        throw e;
      }
      this.reassembly.done(whole);
      const { taken, cost } = out;
      this.d.log.info({ gateway: m.gateway, to: m.destination, taken, cost }, 'mobile-originated SMS');
      if (out.redelivery) return;
      const data = { from: whole.from, to: whole.to, text: whole.text, gateway: m.gateway, taken, cost };
      await this.events?.emit('sms.incoming', data).catch((e: unknown) => this.d.log.warn({ err: e }, 'sms.incoming'));
      return;
    }
    const parsed = parseReceipt(m.text);
    const id = m.receiptedId || parsed?.id || '';
    const outcome = receiptOutcome(m.messageState, parsed?.stat);
    if (!id || !outcome) return;
    let part = await this.queue.partByMessageId(m.gateway, id);
    // another process may still be committing the acknowledgement the receipt overtook
    if (!part)
      part = await new Promise((r) => setTimeout(r, 500)).then(() => this.queue.partByMessageId(m.gateway, id));
    if (!part) {
      this.d.log.info({ gateway: m.gateway, messageId: id }, 'delivery receipt for an unknown message id');
      return;
    }
    const row = await this.queue.byId(part.smsid);
    if (!row) return;
    await this.d.ledger.transaction(async (trx) => {
      await this.queue.setPartStateIn(trx, part.smsid, part.part, outcome.state);
      if (outcome.state === 'failed') {
        if (await this.queue.finalIn(trx, row.id, 'failed', `part ${part.part + 1}: ${outcome.text}`))
          await this.refundIn(trx, row);
        return;
      }
      const done = await trx
        .selectFrom('tb_smsparts')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('smsid', '=', row.id)
        .where('state', '=', 'delivered')
        .executeTakeFirst();
      if (Number(done?.n ?? 0) >= row.parts) await this.queue.finalIn(trx, row.id, 'delivered', '');
    });
    const after = await this.queue.byId(row.id);
    if (after && after.state !== row.state) await this.statusChanged(row.id);
  }
}
