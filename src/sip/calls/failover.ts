/**
 * B2BUA B legs and failover: every registered contact of the callee in parallel (first 2xx wins, the other forks
 * get CANCEL), or the gateways in order with failover on 5xx/408/480/486/timeout/transport error (other 4xx and 6xx
 * stop); a gateway's 401/407 is answered once with its credentials. Provisional answers (with early SDP) and the
 * final answer are relayed to A; on 2xx: 200 to A with B's SDP, ACK B (at once when A sent an offer; with A's ACK
 * body for a delayed offer), status 4, the session timers and the maxduration cut.
 */
import { generateCallId, generateTag, getHeader, sipUri, type SipResponse } from '../message/index.js';
import type { ClientTransaction, SipTarget } from '../stack.js';
import type { Binding } from '../services/location.js';
import type { AuthUser, User } from '../../domain/accounts/users.js';
import type { GatewayCandidate } from '../../domain/routing/service.js';
import { answerChallenge, confirmLeg, newLeg, sendAck } from '../dialog/uac.js';
import { bodyOf } from './sessiontimer.js';
import { dialogIdOf, type Call, type CallCore, type GatewayHop, type Leg } from './core.js';
import type { SipHop } from '../trunks/resolve.js';
import { inDialogHandler } from './indialog.js';
import { bye, cancelLeg, endCall } from './teardown.js';

const FAILOVER = new Set([408, 480, 486]);

type Forward = (call: Call, by: User | AuthUser, target: string) => Promise<void>;

export class CallDialer {
  constructor(
    private readonly core: CallCore,
    /** forwards a call on busy (the set-up phase) */
    private readonly forward: Forward,
  ) {}

  /** Calls every registered device of a user in parallel. */
  dialUser(call: Call, username: string, bindings: Binding[]): void {
    for (const b of bindings) {
      this.dial(call, {
        uri: b.contact,
        to: this.core.ourUri(username, b.transport),
        target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
        from: call.callerName,
      });
    }
  }

  /** Calls the gateways in failover order. */
  dialGateways(call: Call, candidates: GatewayCandidate[]): void {
    call.gwQueue = [...candidates];
    if (!call.gwQueue.length) return this.giveUp(call, 503, 'Service Unavailable');
    this.dialNextGateway(call, call.gwQueue);
  }

  private dialNextGateway(call: Call, queue: GatewayHop[]): void {
    const g = queue.shift()!;
    if (!g.hop) return void this.resolveAndDial(call, g, queue);
    // a name resolved by SRV/NAPTR keeps the name (no port) in the Request-URI; the hop is where it goes
    const uri = sipUri(g.number, g.host, g.dns ? undefined : g.port, g.hop.transport);
    // the route recorded in the CDR: the gateway tried last (and who forwarded, when the forwarding user pays)
    const route = `gw:${g.name}${call.forwarded && call.forwarder ? ` fwd:${call.forwarder.username}` : ''}`;
    this.core.live.setRoute(call.id, '', route);
    this.dial(call, {
      uri,
      to: uri,
      target: { transport: g.hop.transport, host: g.hop.host, port: g.hop.port },
      from: call.callerName,
      gateway: g,
    });
  }

  /** RFC 3263: the gateway's hops go first in the queue (failover across them as across gateways). */
  private async resolveAndDial(call: Call, g: GatewayHop, queue: GatewayHop[]): Promise<void> {
    const core = this.core;
    let hops: SipHop[];
    try {
      hops = await core.sip.resolver.resolve(g.host, g.port, g.transport, g.dns ?? '');
    } catch (e) {
      core.log.warn({ gateway: g.name, host: g.host, err: (e as Error).message }, 'gateway host not resolved');
      if (call.state !== 'calling') return;
      if (queue.length) return this.dialNextGateway(call, queue);
      return this.giveUp(call, 503, 'Service Unavailable');
    }
    if (call.state !== 'calling') return;
    queue.unshift(...hops.map((hop) => ({ ...g, hop })));
    this.dialNextGateway(call, queue);
  }

  private dial(
    call: Call,
    t: { uri: string; to: string; target: SipTarget; from: string; gateway?: GatewayCandidate },
  ): Leg {
    const core = this.core;
    const req = call.aReq;
    const ct = getHeader(req, 'Content-Type');
    const body = core.media.sdp(call, 'a', req.body, ct); // RTP relay: the offer to B points at the relay
    const leg: Leg = {
      ...newLeg({
        callId: generateCallId(),
        localTag: generateTag(),
        fromUri: core.ourUri(t.from, t.target.transport),
        toUri: t.to,
        ruri: t.uri,
        target: t.target,
        extra: [
          { name: 'Contact', value: core.contactFor(t.target.transport) },
          { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS, REFER' },
          ...core.timers.offer(),
        ],
        body,
        contentType: ct,
      }),
      gateway: t.gateway,
    };
    call.forks.push(leg);
    core.byCallId.set(leg.callId, { call, side: 'b' });
    this.send(call, leg);
    return leg;
  }

  /** Sends (or re-sends with credentials) the INVITE of a B leg and follows its answers. */
  private send(call: Call, leg: Leg): void {
    const core = this.core;
    let ct: ClientTransaction;
    try {
      ct = core.stack.request(leg.invite!, leg.target);
    } catch (e) {
      core.log.warn({ err: String(e) }, 'B leg INVITE not sent');
      setImmediate(() => this.legFailed(call, leg, 503, 'Service Unavailable'));
      return;
    }
    leg.ct = ct;
    // no response at all within legTimeoutMs → next gateway / failure; ringing longer than ringTimeoutSeconds → 408
    const expire = () => {
      if (leg.done) return;
      try {
        ct.cancel?.();
      } catch {
        /* gone */
      }
      this.legFailed(call, leg, 408, 'Request Timeout');
    };
    let guard = setTimeout(expire, core.o.legTimeoutMs);
    guard.unref();
    let ringing = false;
    ct.on('provisional', (res: SipResponse) => {
      if (!ringing) {
        ringing = true;
        clearTimeout(guard);
        guard = setTimeout(expire, core.o.ringTimeoutSeconds * 1000);
        guard.unref();
      }
      this.onProvisional(call, leg, res);
    });
    ct.on('final', (res: SipResponse) => {
      clearTimeout(guard);
      this.onFinal(call, leg, res);
    });
    ct.on('timeout', () => {
      clearTimeout(guard);
      this.legFailed(call, leg, 408, 'Request Timeout');
    });
    ct.on('transport-error', () => {
      clearTimeout(guard);
      this.legFailed(call, leg, 503, 'Service Unavailable');
    });
  }

  private onProvisional(call: Call, leg: Leg, res: SipResponse): void {
    const core = this.core;
    if (call.state !== 'calling' || leg.done || res.status === 100) return;
    core.live.setState(call.id, '', 'ringing');
    const ct = getHeader(res, 'Content-Type');
    core.respond(
      call.aTx,
      call.aReq,
      res.status,
      res.reason,
      [{ name: 'Contact', value: core.contactFor(call.aSrc.transport) }],
      res.body.length && ct ? { type: ct, data: core.media.sdp(call, 'b', res.body, ct) /* RTP relay */ } : undefined,
      call.a.localTag,
    );
  }

  private onFinal(call: Call, leg: Leg, res: SipResponse): void {
    if (res.status >= 200 && res.status < 300) return this.onAnswer(call, leg, res);
    if (res.status === 422 && call.state === 'calling' && this.core.timers.retry422(leg, res))
      return this.send(call, leg);
    const challenged = res.status === 401 || res.status === 407;
    if (challenged && leg.gateway?.username && !leg.authTried && call.state === 'calling') {
      if (answerChallenge(leg, res, leg.gateway)) {
        leg.authTried = true;
        return this.send(call, leg);
      }
    }
    this.legFailed(call, leg, res.status, res.reason);
  }

  private onAnswer(call: Call, leg: Leg, res: SipResponse): void {
    const core = this.core;
    if (call.b && call.b !== leg) {
      // another fork answered too: ACK and BYE it
      const extra = { ...leg };
      confirmLeg(extra, res);
      sendAck(core.stack, extra, undefined, core.log);
      bye(core, extra);
      return;
    }
    if (call.b === leg) {
      // 2xx retransmission: ACK again
      if (call.bAck) core.stack.request(call.bAck, leg.target);
      return;
    }
    confirmLeg(leg, res);
    if (call.state !== 'calling') {
      // answered after A cancelled: ACK + BYE
      sendAck(core.stack, leg, undefined, core.log);
      bye(core, leg);
      return;
    }
    leg.done = true;
    call.b = leg;
    call.state = 'connected';
    call.answered = true;
    core.dialogs.add(dialogIdOf(leg), inDialogHandler(core, call, 'b'));
    if (call.noAnswer) clearTimeout(call.noAnswer);
    for (const f of call.forks) if (f !== leg) cancelLeg(core, f);
    call.forks = [leg];
    const aOffered = call.aReq.body.length > 0;
    if (aOffered) call.bAck = sendAck(core.stack, leg, undefined, core.log);
    else call.pendingAck = true;
    // A must ACK our 2xx (the stack retransmits it meanwhile); no ACK within 32 s (timer L) ends the call
    const ackGuard = setTimeout(() => {
      if (!call.aAcked && call.state === 'connected') void endCall(core, call, 'no ACK from caller', true);
    }, 32_000);
    ackGuard.unref();
    const ct = getHeader(res, 'Content-Type');
    const answer = () =>
      res.body.length && ct ? { type: ct, data: core.media.sdp(call, 'b', res.body, ct) /* RTP relay */ } : undefined;
    // RFC 4028 session timers of both legs; expiry (e.g. a vanished caller) ends the call
    const stHeaders = core.timers.connect(
      call.a,
      call.aReq,
      leg,
      res,
      { a: answer, b: () => bodyOf(call.bAck?.body.length ? call.bAck : leg.invite) },
      () => void endCall(core, call, 'session timer expired', true),
    );
    core.respond(
      call.aTx,
      call.aReq,
      200,
      'OK',
      [{ name: 'Contact', value: core.contactFor(call.aSrc.transport) }, ...stHeaders],
      answer(),
      call.a.localTag,
    );
    core.setState(call, 4);
    if (core.callLog.isLevelEnabled('info')) core.callLog.info({ callid: call.id }, 'call connected');
    core.media.connected(call, () => void endCall(core, call, 'rtp timeout', true)); // RTP relay: RTP timeout
    const maxReason = () => (core.live.get(call.id)?.capped ? 'max call age reached' : 'maxduration reached');
    void core.live
      .connected(call.id, '', { onMaxDuration: () => void endCall(core, call, maxReason(), true) })
      .catch((e) => core.log.warn({ err: String(e) }, 'live call connect not persisted'));
  }

  private legFailed(call: Call, leg: Leg, status: number, reason: string): void {
    if (leg.done) return;
    leg.done = true;
    this.core.byCallId.delete(leg.callId);
    if (call.state !== 'calling') return;
    if (leg.gateway) {
      // failover to the next gateway
      const next = call.gwQueue;
      const stop = status >= 600 || (status >= 400 && status < 500 && !FAILOVER.has(status));
      if (!stop && next && next.length) {
        call.forks = call.forks.filter((f) => f !== leg);
        this.dialNextGateway(call, next);
        return;
      }
      return this.giveUp(call, status, reason);
    }
    if (status === 486 || status === 600) call.busy = true;
    if (call.forks.some((f) => !f.done)) return;
    // all forks failed: a busy answer from any device counts as busy (RFC 3261 §16.7 picks 6xx/486 over 408/480)
    if (call.busy) {
      status = 486;
      reason = 'Busy Here';
    }
    if (status === 486 && call.busyFwd && call.forwarder) {
      void this.forward(call, call.forwarder, call.busyFwd).catch(() => undefined);
      return;
    }
    this.giveUp(call, status, reason);
  }

  private giveUp(call: Call, status: number, reason: string): void {
    this.core.respond(call.aTx, call.aReq, status, reason, [], undefined, call.a.localTag);
    void endCall(this.core, call, `${status} ${reason}`, false);
  }
}
