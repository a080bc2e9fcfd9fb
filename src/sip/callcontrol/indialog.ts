/**
 * Requests of the parties inside the dialogs of a callback/p2p call (both legs are ours as UAC): BYE, re-INVITE /
 * UPDATE, INFO, CANCEL. New session descriptions go to the other party (RFC 3725 §7), refreshes are answered here.
 */
import { createResponse, getHeader, type SipRequest, type SipResponse } from '../message/index.js';
import { dialogRequest, sendInDialog } from '../dialog/uac.js';
import type { ServerTransaction } from '../stack.js';
import type { LegCaller } from './legs.js';
import type { BridgedCall, Leg, StackLike } from './types.js';

type Log = { debug(o: object, m: string): void; warn(o: object, m: string): void };

export class InDialog {
  constructor(
    private readonly stack: StackLike,
    private readonly legs: LegCaller,
    private readonly log: Log,
    private readonly call: {
      /** ends the call (both legs, the CDRs) */
      end: (call: BridgedCall, reason: string) => void;
      /** a description `from` gave, as the other party gets it (the RTP relay rewrites it when the call has one) */
      sdp: (call: BridgedCall, from: 'a' | 'b', body: Buffer) => Buffer;
    },
  ) {}

  /**
   * A request inside one of our dialogs: BYE ends the call; a re-INVITE / UPDATE with a new session description
   * (hold, resume, codec change) and INFO (DTMF) go to the other party and its answer comes back; one that repeats
   * the description the party already gave (a session refresh) is answered here with what it holds.
   */
  handle(call: BridgedCall, leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    if (req.method === 'BYE') {
      tx.respond(createResponse(req, 200, 'OK'));
      if (leg.state === 'confirmed') {
        leg.state = 'ended';
        this.call.end(call, leg.name === 'a' ? 'A hung up' : 'B hung up');
      }
      return;
    }
    if (req.method === 'INFO') {
      if (call.state !== 'connected') return void tx.respond(createResponse(req, 200, 'OK'));
      return this.passOn(call, leg, req, tx);
    }
    if (req.method === 'INVITE' || req.method === 'UPDATE') {
      if (leg.state !== 'confirmed' || !leg.given) {
        tx.respond(createResponse(req, 491, 'Request Pending'));
        return;
      }
      const headers = [{ name: 'Contact', value: this.legs.contact(leg.target) }];
      const refresh = !req.body.length || (leg.got !== undefined && req.body.equals(leg.got));
      if (call.state !== 'connected' || refresh) {
        if (req.method === 'UPDATE' && !req.body.length)
          return void tx.respond(createResponse(req, 200, 'OK', { headers }));
        tx.respond(createResponse(req, 200, 'OK', { headers, body: leg.given, contentType: 'application/sdp' }));
        return;
      }
      return this.passOn(call, leg, req, tx);
    }
    if (req.method === 'CANCEL') {
      tx.respond(createResponse(req, tx.cancels ? 200 : 481, tx.cancels ? 'OK' : 'Call/Transaction Does Not Exist'));
      return;
    }
    tx.respond(createResponse(req, 501, 'Not Implemented'));
  }

  /**
   * The same request on the other leg, its final answer back to the party (RFC 3725 §7: a new offer from one party
   * is an offer to the other). One offer at a time per call: a second one meanwhile gets 491 (RFC 3261 §14.1).
   */
  private passOn(call: BridgedCall, leg: Leg, req: SipRequest, tx: ServerTransaction): void {
    const offer = req.method !== 'INFO';
    if (offer && call.offering) return void tx.respond(createResponse(req, 491, 'Request Pending'));
    const other = leg.name === 'a' ? call.b : call.a;
    const type = getHeader(req, 'Content-Type');
    const data = offer ? this.call.sdp(call, leg.name, req.body) : req.body;
    const body = req.body.length && type ? { type, data } : undefined;
    const extra = offer ? [{ name: 'Contact', value: this.legs.contact(other.target) }] : [];
    const ct = sendInDialog(this.stack, other, req.method, body, extra, this.log);
    if (!ct) return void tx.respond(createResponse(req, 500, 'Server Internal Error'));
    if (offer) call.offering = true;
    const cseq = other.cseq;
    const mineContact = offer ? [{ name: 'Contact', value: this.legs.contact(leg.target) }] : [];
    let done = false;
    const answer = (status: number, reason: string, res?: SipResponse) => {
      if (done) return;
      done = true;
      if (offer) call.offering = false;
      const rtype = res && getHeader(res, 'Content-Type');
      const rbody = res?.body.length && rtype ? res.body : undefined;
      let back = rbody;
      if (offer && status >= 200 && status < 300) {
        // the new descriptions: what each party gave and was given (as the relay rewrote them)
        leg.got = Buffer.from(req.body);
        other.given = data;
        if (rbody) {
          other.got = Buffer.from(rbody);
          back = this.call.sdp(call, other.name, other.got);
          leg.given = back;
        }
      }
      tx.respond(
        createResponse(req, status, reason, {
          headers: mineContact,
          ...(back && rtype ? { body: back, contentType: rtype } : {}),
        }),
      );
    };
    ct.on('final', (res: SipResponse) => {
      if (req.method === 'INVITE' && res.status >= 200 && res.status < 300) {
        try {
          this.stack.request(dialogRequest(other, 'ACK', cseq), other.target);
        } catch {
          /* the party will retransmit its 2xx and end the dialog without ACK */
        }
      }
      answer(res.status, res.reason, res);
    });
    ct.on('timeout', () => answer(408, 'Request Timeout'));
    ct.on('transport-error', () => answer(503, 'Service Unavailable'));
  }
}
