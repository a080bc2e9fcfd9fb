/**
 * Instant messages (MESSAGE, RFC 3428): delivered to every registered device of the recipient; stored offline
 * (tb_offline_ims through OfflineIms) when none accepts them, and delivered on the recipient's next REGISTER.
 */
import {
  escapeUser,
  generateCallId,
  generateTag,
  getHeader,
  mediaType,
  quoteDisplay,
  uriHostPart,
  uriUser,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource } from '../stack.js';
import { finalResponse } from '../transaction/final.js';
import type { Binding } from './location.js';
import type { StoredIm } from './imstore.js';
import type { SipContext } from './context.js';

/**
 * A MESSAGE from a registered user to a phone number (not a user): the text goes out as an SMS (wired by the
 * composition root to the SMS service). Answers the SIP status: 202 once queued, else a 4xx/5xx with the reason.
 */
export type PhoneMessageHandler = (
  from: string,
  number: string,
  text: string,
) => Promise<{ status: number; reason: string }>;

/** A dialled number: digits with an optional leading + (spaces and dashes are not part of a SIP user). */
const PHONE = /^\+?[0-9]{3,20}$/;

export class Messaging {
  /** Set by SipServer.setPhoneMessageHandler; without it a MESSAGE to a number that is no user is 404. */
  toPhone?: PhoneMessageHandler;

  constructor(
    private readonly ctx: SipContext,
    /** how long to wait for a phone's 2xx before answering 202 to a MESSAGE (ms) */
    private readonly imWaitMs = 4000,
  ) {}

  async onMessage(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const user = await this.ctx.authenticate(req, tx, src, true);
    if (!user) return;
    const target = uriUser(req.ruri) ?? uriUser(req.core!.to!.uri);
    const to = target ? await this.ctx.userFor(target) : null;
    const ct = getHeader(req, 'Content-Type') ?? 'text/plain';
    if (!to && target && PHONE.test(target) && this.toPhone) {
      if (mediaType(ct) !== 'text/plain')
        return this.ctx.respond(tx, req, 415, 'Unsupported Media Type (SMS: text/plain)');
      // a phone's line break after the text (sipp, many softphones) is not part of the SMS: it would cost a character
      const r = await this.toPhone(user.username, target, req.body.toString('utf8').replace(/(\r?\n)+$/, ''));
      return this.ctx.respond(tx, req, r.status, r.reason);
    }
    if (!to) return this.ctx.respond(tx, req, 404, 'Not Found');
    if (mediaType(ct) === 'application/im-iscomposing+xml') {
      // typing notifications are not stored; forwarded when online, else dropped
      const bs = this.ctx.location.lookup(to.username);
      for (const b of bs) void this.sendMessage(user.username, to.username, req.body, ct, b).catch(() => undefined);
      return this.ctx.respond(tx, req, bs.length ? 200 : 480, bs.length ? 'OK' : 'Temporarily Unavailable');
    }
    const r = await this.deliverIm(user.username, to.username, req.body, ct, this.imWaitMs);
    if (r === 'delivered') return this.ctx.respond(tx, req, 200, 'OK');
    return this.ctx.respond(tx, req, 202, 'Accepted');
  }

  /** Builds and sends one MESSAGE to a binding; resolves with the final response (null: no answer). */
  private async sendMessage(
    from: string,
    to: string,
    body: Buffer,
    contentType: string,
    b: Binding,
    date?: number,
  ): Promise<SipResponse | null> {
    const local = this.ctx.stack.localAddress(b.transport);
    const domain = this.ctx.o.sipdomain || (local ? uriHostPart(local.host) : '127.0.0.1');
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `${quoteDisplay(from)} <sip:${escapeUser(from)}@${domain}>;tag=${generateTag()}` },
      { name: 'To', value: `<sip:${escapeUser(to)}@${domain}>` },
      { name: 'Call-ID', value: generateCallId() },
      { name: 'CSeq', value: '1 MESSAGE' },
    ];
    if (date) headers.push({ name: 'Date', value: new Date(date).toUTCString() });
    headers.push({ name: 'Content-Type', value: contentType }, { name: 'Content-Length', value: String(body.length) });
    const msg: SipRequest = { type: 'request', method: 'MESSAGE', uri: b.contact, version: 'SIP/2.0', headers, body };
    let ct: ClientTransaction;
    try {
      ct = this.ctx.stack.request(msg, { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId });
    } catch (e) {
      this.ctx.services.log.warn({ err: String(e), to }, 'SIP MESSAGE could not be sent');
      return null;
    }
    return finalResponse(ct);
  }

  /**
   * Delivers an IM to every registered device of `to`; 'delivered' as soon as one answers 2xx within `waitMs`,
   * 'queued' when still in flight (it is stored offline if no device accepts it in the end), 'stored' when offline.
   */
  async deliverIm(
    from: string,
    to: string,
    body: Buffer,
    contentType: string,
    waitMs = 4000,
  ): Promise<'delivered' | 'queued' | 'stored'> {
    const bs = this.ctx.location.lookup(to);
    if (!bs.length) {
      await this.ctx.ims.store(from, to, body.toString('utf8'), contentType);
      return 'stored';
    }
    // true as soon as one device answers 2xx; false when every device failed
    const first = new Promise<boolean>((resolve) => {
      let left = bs.length;
      for (const b of bs) {
        void this.sendMessage(from, to, body, contentType, b).then((r) => {
          if (r !== null && r.status >= 200 && r.status < 300) resolve(true);
          else if (--left === 0) resolve(false);
        });
      }
    });
    const outcome = this.ctx.track(
      first.then(async (ok) => {
        if (!ok) await this.ctx.ims.store(from, to, body.toString('utf8'), contentType);
        return ok;
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
      timer.unref();
    });
    const r = await Promise.race([outcome, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') return 'queued';
    return r ? 'delivered' : 'stored';
  }

  /** Sends the stored messages of a user to one device, in order; each is marked delivered after its 2xx. */
  async deliverOffline(username: string, b: Binding): Promise<number> {
    const list: StoredIm[] = await this.ctx.ims.claim(username);
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      const res = await this.sendMessage(
        m.fromuser,
        username,
        Buffer.from(m.body, 'utf8'),
        m.content_type,
        b,
        m.created_at,
      );
      if (res && res.status >= 200 && res.status < 300) {
        if (await this.ctx.ims.delivered(m.id)) n++;
      } else {
        this.ctx.ims.release(list.slice(i).map((x) => x.id));
        break;
      }
    }
    return n;
  }
}
