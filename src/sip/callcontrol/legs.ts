/**
 * Placing one leg of a bridged call (we are its UAC): its targets in order, failover on 5xx, 408, 480, transaction
 * timeout or transport error; a 401/407 answered once per target with the gateway's credentials; a ring timeout
 * CANCELs and ends the leg (the party exists: no failover). The INVITE, digest answer, ACK and BYE are the shared
 * outgoing-leg module's (src/sip/dialog/uac.ts).
 */
import { uriHostPart, type SipResponse } from '../message/index.js';
import type { ClientTransaction, SipTarget } from '../stack.js';
import { answerChallenge, cancelInvite, confirmLeg, newLeg, sendAck, sendBye } from '../dialog/uac.js';
import { rejectingAnswer } from './sdp.js';
import type { BridgedCall, InviteOutcome, Leg, LegTarget, StackLike } from './types.js';

type Log = { debug(o: object, m: string): void; warn(o: object, m: string): void };

export class LegCaller {
  constructor(
    private readonly stack: StackLike,
    private readonly log: Log,
    private readonly userAgent: () => string,
    /** a leg's dialog is confirmed (2xx): the controller registers it in the dialog table */
    private readonly confirmed: (call: BridgedCall, leg: Leg) => void,
    /** the leg's party is alerted (a 180/183): call progress */
    private readonly ringing: (call: BridgedCall, leg: Leg) => void = () => undefined,
  ) {}

  /** Our Contact on a leg's transport. */
  contact(target: SipTarget): string {
    const local = this.stack.localAddress(target.transport);
    const host = local ? `${uriHostPart(local.host)}:${local.port}` : '127.0.0.1';
    return `<sip:3pcc@${host}${target.transport === 'udp' ? '' : `;transport=${target.transport}`}>`;
  }

  /**
   * Calls one leg through its targets in order. Resolves with the 2xx (the dialog confirmed on our side, not ACKed
   * yet) or null (leg.outcome says why).
   */
  async invite(call: BridgedCall, leg: Leg, sdp: Buffer | undefined, ringMs: number): Promise<SipResponse | null> {
    leg.state = 'calling';
    for (const t of leg.plan.targets) {
      this.prepare(leg, t, sdp);
      for (let attempt = 0; attempt < 2; attempt++) {
        if (call.state === 'ended') return null;
        const res = await this.transmit(call, leg, sdp, ringMs);
        if (res === 'cancelled') return null;
        if (res === 'no-answer') {
          leg.outcome = `${t.name}: no answer within ${Math.round(ringMs / 1000)} s`;
          leg.state = 'ended';
          return null; // the party exists but did not answer: no failover
        }
        if (res === 'timeout' || res === 'transport-error') {
          leg.outcome =
            res === 'timeout' ? `${t.name}: no answer (timeout)` : `${t.name}: unreachable (transport error)`;
          break; // next target
        }
        if (res.status >= 200 && res.status < 300) return res;
        leg.outcome = `${t.name}: ${res.status} ${res.reason}`.trim();
        if ((res.status === 401 || res.status === 407) && attempt === 0 && t.auth) {
          if (answerChallenge(leg, res, t.auth)) continue;
        }
        if (res.status >= 500 || res.status === 408 || res.status === 480) break; // next target
        leg.state = 'ended';
        return null; // 4xx/6xx: the party refused
      }
    }
    leg.state = 'ended';
    return null;
  }

  /** The INVITE of a leg to one target (the next CSeq of the leg's dialog). */
  private prepare(leg: Leg, t: LegTarget, sdp: Buffer | undefined): void {
    const next = newLeg({
      callId: leg.callId,
      localTag: leg.localTag,
      fromUri: leg.localUri,
      fromDisplay: leg.fromDisplay,
      toUri: t.to,
      ruri: t.ruri,
      target: t.target,
      extra: [
        { name: 'Contact', value: this.contact(t.target) },
        { name: 'Allow', value: 'INVITE, ACK, BYE, CANCEL, OPTIONS' },
        { name: 'User-Agent', value: this.userAgent() },
      ],
      body: sdp,
      contentType: 'application/sdp',
      cseq: leg.cseq + 1,
    });
    Object.assign(leg, {
      cseq: next.cseq,
      invite: next.invite,
      target: next.target,
      remoteUri: next.remoteUri,
      remoteTarget: next.remoteTarget,
      remoteTag: null,
      routes: [],
    });
  }

  /** Sends the leg's INVITE and waits for its outcome (ring timeout: CANCEL, then 'no-answer'). */
  private transmit(call: BridgedCall, leg: Leg, sdp: Buffer | undefined, ringMs: number): Promise<InviteOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      let ringTimer: NodeJS.Timeout | undefined;
      const settle = (v: InviteOutcome) => {
        if (settled) return;
        settled = true;
        if (ringTimer) clearTimeout(ringTimer);
        resolve(v);
      };
      let ct: ClientTransaction;
      let ringExpired = false;
      try {
        ct = this.stack.request(leg.invite!, leg.target);
      } catch (e) {
        this.log.warn({ err: String(e), callid: call.callid }, 'call control INVITE not sendable');
        return settle('transport-error');
      }
      leg.ct = ct;
      ringTimer = setTimeout(() => {
        ringExpired = true;
        cancelInvite(ct);
        // the CANCEL makes the party answer 487; if it never does, give up anyway
        ringTimer = setTimeout(() => settle('no-answer'), 4000);
        ringTimer.unref?.();
      }, ringMs);
      ringTimer.unref?.();
      ct.on('provisional', (res: SipResponse) => {
        if (res.status > 100 && leg.state === 'calling') leg.state = 'early';
        if (res.status > 100 && call.state !== 'ended') this.ringing(call, leg);
      });
      ct.on('final', (res: SipResponse) => {
        if (res.status >= 200 && res.status < 300) {
          if (!settled && call.state !== 'ended' && leg.state !== 'ended') {
            this.confirm(call, leg, res);
            settle(res);
          } else if (leg.ack) {
            this.stack.request(leg.ack, leg.target); // retransmitted 2xx: ACK again
          } else if (!settled || call.state === 'ended' || leg.state === 'ended') {
            // answered after we gave up (CANCEL race) or after the call ended: ACK and hang up that dialog
            if (!leg.remoteTag) this.confirm(call, leg, res);
            this.ack(leg, sdp ? undefined : rejectingAnswer(res.body));
            this.bye(leg);
            settle('cancelled');
          }
          return;
        }
        settle(ringExpired && res.status === 487 ? 'no-answer' : res);
      });
      ct.on('timeout', () => settle('timeout'));
      ct.on('transport-error', () => settle('transport-error'));
    });
  }

  /** Dialog state from a 2xx (RFC 3261 §12.1.2). */
  private confirm(call: BridgedCall, leg: Leg, res: SipResponse): void {
    confirmLeg(leg, res);
    leg.state = 'confirmed';
    leg.connectAt = Date.now();
    this.confirmed(call, leg);
  }

  /** ACK of the leg's 2xx, with the session description it needs (if any). */
  ack(leg: Leg, body: Buffer | undefined): void {
    if (!leg.connectAt) return; // no 2xx yet
    leg.ack = sendAck(this.stack, leg, body?.length ? { type: 'application/sdp', data: body } : undefined, this.log);
  }

  /** BYE on a confirmed leg (it is ended then). */
  bye(leg: Leg): void {
    if (leg.state !== 'confirmed') return;
    leg.state = 'ended';
    sendBye(this.stack, leg, this.log);
  }
}
