/**
 * Call transfer by REFER (RFC 3515) inside a connected call, from either side (the referrer R); the other party of
 * the call is the transferee T. The REFER is answered 202 and R gets NOTIFYs (message/sipfrag: 100 Trying, then the
 * outcome's status line) through ./refer.ts.
 *
 * Blind (Refer-To: sip:C@…): C is routed as a call R makes (R's account, its tariff and credit) and billed to R: the
 * referrer pays for the leg its transfer created, as the forwarding user pays for a forwarded leg. The INVITE to C
 * carries no SDP (C offers in its 2xx) and Referred-By (RFC 3892); when C answers, T is re-INVITEd with C's offer and
 * T's answer goes to C in the ACK; the first call ends (CDR reason "transferred to C"), R's leg gets BYE, and T ↔ C
 * is a new call with its own CDR and reservation. While C rings, T and R stay in their call; a failure leaves it up.
 *
 * Attended (Refer-To: sip:C@…?Replaces=callid;to-tag=…;from-tag=…): the Replaces names R's dialog of a second
 * connected call (R ↔ C through voxswitch). C is re-INVITEd without SDP, T with C's offer, C gets T's answer in the
 * ACK; both of R's legs get BYE, both calls end "transferred (attended)", and T ↔ C goes on as a new call billed
 * like the consultation call was (its payer, its rate, its destination): it is that call's continuation.
 *
 * Refused: no account behind R, option allowtransfer=false or the account's tb_users.allowtransfer 0 → 403; a
 * REFER before the answer or during another transfer → 491; no or several Refer-To, or one that is not a SIP URI →
 * 400. After the 202: an unknown or refused destination → the router's status (404, 403, …) in the final NOTIFY, no
 * credit → 402, C busy or unreachable → C's status, a Replaces naming no connected dialog of ours → 481, one of a
 * call R is not in → 403.
 */
import { generateCallId, generateTag, getHeader, getHeaders, sipUri, type SipRequest } from '../message/index.js';
import type { SipResponse } from '../message/index.js';
import type { ServerTransaction, SipTarget } from '../stack.js';
import type { User } from '../../domain/accounts/users.js';
import type { Rate } from '../../domain/rating/rate.js';
import type { GatewayCandidate } from '../../domain/routing/service.js';
import { freeRateFor } from '../../domain/calls/charging.js';
import { answerChallenge, confirmLeg, dialogRequest, newLeg, sendAck, sendInDialog } from '../dialog/uac.js';
import { dialogIdOf, legOf, type Call, type CallCore, type Leg, type Side } from './core.js';
import type { InDialogHandler } from '../dialog/table.js';
import { bye, cancelLeg, endCall } from './teardown.js';
import { parseReferTo, ReferNotifier, type Replaces } from './refer.js';

const other = (s: Side): Side => (s === 'a' ? 'b' : 'a');
const nameOf = (call: Call, s: Side) => (s === 'a' ? call.callerName : call.calleeName);

/** A failed step of a transfer: the status line of the final NOTIFY. */
class TransferFailed extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`${status} ${reason}`);
  }
}

/** The dialog-table handler of a call's side (./indialog.ts, passed in: it dispatches REFER here). */
export type HandlerFor = (core: CallCore, call: Call, side: Side) => InDialogHandler;

/** A REFER inside a call's dialog (from `side`); `handlerFor` gives the new call's dialogs their handler. */
export async function onRefer(
  core: CallCore,
  call: Call,
  side: Side,
  req: SipRequest,
  tx: ServerTransaction,
  handlerFor: HandlerFor,
) {
  const mine = legOf(call, side)!;
  const answer = (status: number, reason: string) =>
    core.respond(tx, req, status, reason, [], undefined, mine.localTag);
  if (call.state !== 'connected' || !call.b) return answer(491, 'Request Pending (the call is not connected)');
  if (call.transferring) return answer(491, 'Request Pending (a transfer is in progress)');
  const referTo = getHeaders(req, 'Refer-To');
  if (referTo.length !== 1) return answer(400, 'Bad Request (one Refer-To expected)');
  const target = parseReferTo(referTo[0]!);
  if (!target) return answer(400, 'Bad Request (Refer-To is not a SIP URI with a user)');
  if (!core.services.config.options.allowtransfer) return answer(403, 'Forbidden (transfer not allowed)');
  const username = call.users?.[side];
  const referrer = username ? await core.services.users.byUsername(username).catch(() => undefined) : undefined;
  if (!referrer?.enabled) return answer(403, 'Forbidden (transfer needs an account)');
  if (!(await core.services.users.allowsTransfer(referrer.id)))
    return answer(403, 'Forbidden (transfer not allowed for this account)');
  if (call.state !== 'connected' || call.transferring) return answer(491, 'Request Pending');
  call.transferring = side;
  const contact = [{ name: 'Contact', value: core.contactFor(mine.target.transport) }];
  core.respond(tx, req, 202, 'Accepted', contact, undefined, mine.localTag);
  const notify = new ReferNotifier(core, mine, mine.referred ? req.core?.cseq?.seq : undefined);
  mine.referred = true;
  notify.progress(100, 'Trying');
  const referredBy = getHeader(req, 'Referred-By') ?? `<${core.ourUri(referrer.username, mine.target.transport)}>`;
  core.callLog.info(
    { callid: call.id, referrer: referrer.username, target: target.user, attended: !!target.replaces },
    'transfer requested',
  );
  try {
    const h = handlerFor;
    if (target.replaces) await attended(core, call, side, referrer, target.replaces, h);
    else await blind(core, call, side, referrer, target.user, referredBy, h);
    // the referrer's part is over: its leg ends once it has the outcome (unless it hung up already)
    if (!call.referrerGone) {
      notify.final(200, 'OK');
      bye(core, mine);
    }
  } catch (e) {
    const f = e instanceof TransferFailed ? e : new TransferFailed(500, 'Server Internal Error');
    if (!(e instanceof TransferFailed)) core.log.warn({ err: String((e as Error)?.message ?? e) }, 'transfer failed');
    core.callLog.info({ callid: call.id, status: f.status, reason: f.reason }, 'transfer refused');
    if (call.referrerGone) {
      // nobody is left to hear of it but the transferee: its call ends
      await endCall(core, call, `transfer failed (${f.status} ${f.reason})`, true);
    } else if ((call.state as Call['state']) !== 'ended') notify.final(f.status, f.reason);
  } finally {
    call.transferring = undefined;
  }
}

/** Blind transfer: T is called to C (billed to R); T ↔ C replaces the call once C answered. */
async function blind(
  core: CallCore,
  call: Call,
  side: Side,
  referrer: User,
  to: string,
  referredBy: string,
  handlerFor: HandlerFor,
) {
  const live = core.live;
  const tSide = other(side);
  const tName = nameOf(call, tSide);
  const id = generateCallId();
  const d = await core.router.route({
    caller: referrer.username,
    called: to,
    fromIp: '',
    user: referrer,
    reservedCredit: live.reservedFor(referrer.id),
  });
  const base = { callid: id, userId: referrer.id, caller: tName };
  if (d.kind === 'reject') {
    live.countAttempt();
    await live.recordRefusal(
      { ...base, callee: to, route: `rejected xfer:${referrer.username}` },
      `${d.status} ${d.reason}`,
    );
    throw new TransferFailed(d.status, d.reason);
  }
  let targets: DialTarget[];
  let callee: string;
  let route: string;
  let rate: Rate | undefined;
  if (d.kind === 'user') {
    callee = d.user.username;
    route = `user:${callee} xfer:${referrer.username}`;
    rate = await freeRateFor(core.services.ledger, referrer.id);
    targets = core.sip.location.lookup(callee).map((b) => ({
      uri: b.contact,
      to: core.ourUri(callee, b.transport),
      target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
    }));
    if (!targets.length) {
      live.countAttempt();
      await live.recordRefusal({ ...base, callee, route, rate }, 'callee offline');
      throw new TransferFailed(480, 'Temporarily Unavailable');
    }
  } else {
    callee = d.number;
    route = `gateway xfer:${referrer.username}`;
    rate = d.rate;
    targets = await gatewayTargets(core, d.candidates);
    if (!targets.length) {
      live.countAttempt();
      await live.recordRefusal({ ...base, callee, route, rate }, '503 Service Unavailable');
      throw new TransferFailed(503, 'Service Unavailable');
    }
  }
  const parties = [tName, ...(d.kind === 'user' ? [callee] : [])].filter((p) => p && p !== referrer.username);
  const r = await live.reserve({ ...base, callee, route, rate, parties });
  if (!r.ok) throw new TransferFailed(r.status, r.status === 402 ? 'Payment Required' : r.reason);
  let cLeg: Answered;
  try {
    cLeg = await dialFirst(core, call, tName, targets, referredBy, (g) =>
      live.setRoute(id, '', `gw:${g.name} xfer:${referrer.username}`),
    );
  } catch (e) {
    const f = e instanceof TransferFailed ? e : new TransferFailed(500, 'Server Internal Error');
    await live.finish(id, '', { reason: `${f.status} ${f.reason}` });
    throw f;
  }
  const tLeg = legOf(call, tSide)!;
  try {
    await joinMedia(core, tLeg, cLeg, cLeg.answer!);
    if (call.state !== 'connected') throw new TransferFailed(487, 'Request Terminated');
  } catch (e) {
    bye(core, cLeg);
    await live.finish(id, '', { reason: 'transfer failed' });
    throw e;
  }
  const next = bridge(core, call, tLeg, cLeg, {
    id,
    payer: referrer.id,
    callerName: tName,
    calleeName: callee,
    parties,
    // the new call's parties may transfer it in turn
    users: { a: call.users?.[tSide], b: d.kind === 'user' ? callee : undefined },
  });
  const ended = endCall(core, call, `transferred to ${to}`, false);
  register(core, next, handlerFor);
  await Promise.all([ended, startBilling(core, next)]);
}

/** Attended transfer: T and the far party of R's other call (named by Replaces) are joined; both R legs end. */
async function attended(core: CallCore, call: Call, side: Side, referrer: User, rep: Replaces, handlerFor: HandlerFor) {
  const found = core.byCallId.get(rep.callId);
  const x2 = found?.call;
  const rLeg2 = x2 ? legOf(x2, found!.side) : undefined;
  const matches = (l: Leg | undefined) =>
    !!l &&
    ((l.localTag === rep.toTag && l.remoteTag === rep.fromTag) ||
      (l.localTag === rep.fromTag && l.remoteTag === rep.toTag));
  if (!x2 || x2 === call || x2.state !== 'connected' || !x2.b || !matches(rLeg2))
    throw new TransferFailed(481, 'Call/Transaction Does Not Exist');
  if (x2.users?.[found!.side] !== referrer.username) throw new TransferFailed(403, 'Forbidden (not your call)');
  if (x2.transferring) throw new TransferFailed(491, 'Request Pending');
  const cSide = other(found!.side);
  const tSide = other(side);
  const cLeg = legOf(x2, cSide)!;
  const tLeg = legOf(call, tSide)!;
  const tName = nameOf(call, tSide);
  const cName = nameOf(x2, cSide);
  const was = core.live.get(x2.id);
  const id = generateCallId();
  const parties = [tName, cName].filter((p) => p && p !== referrer.username);
  const payer = was?.userId ?? x2.payer;
  x2.transferring = found!.side;
  try {
    const r = await core.live.reserve({
      callid: id,
      userId: payer,
      caller: tName,
      callee: was?.callee ?? cName,
      route: `${was?.route ?? ''} xfer:${referrer.username}`.trim(),
      rate: was?.rate,
      parties,
    });
    if (!r.ok) throw new TransferFailed(r.status, r.status === 402 ? 'Payment Required' : r.reason);
    try {
      // C offers in its answer to an INVITE without SDP; T gets that offer, C the answer in the ACK
      const cRes = await reinvite(core, cLeg, undefined);
      await joinMedia(core, tLeg, cLeg, cRes);
    } catch (e) {
      await core.live.finish(id, '', { reason: 'transfer failed' });
      throw e;
    }
    if (call.state !== 'connected' || x2.state !== 'connected') {
      await core.live.finish(id, '', { reason: 'cancelled' });
      throw new TransferFailed(487, 'Request Terminated');
    }
    const users = { a: call.users?.[tSide], b: x2.users?.[cSide] };
    const next = bridge(core, call, tLeg, cLeg, { id, payer, callerName: tName, calleeName: cName, parties, users });
    const ended = [
      endCall(core, call, 'transferred (attended)', false),
      endCall(core, x2, 'transferred (attended)', false),
    ];
    register(core, next, handlerFor);
    bye(core, rLeg2!);
    await Promise.all([...ended, startBilling(core, next)]);
  } finally {
    x2.transferring = undefined;
  }
}

interface DialTarget {
  uri: string;
  to: string;
  target: SipTarget;
  gateway?: GatewayCandidate;
}

/** The gateways' RFC 3263 hops in failover order (a name that does not resolve is skipped). */
async function gatewayTargets(core: CallCore, candidates: GatewayCandidate[]): Promise<DialTarget[]> {
  const out: DialTarget[] = [];
  for (const g of candidates) {
    const hops = await core.sip.resolver.resolve(g.host, g.port, g.transport, g.dns ?? '').catch(() => []);
    for (const hop of hops) {
      const uri = sipUri(g.number, g.host, g.dns ? undefined : g.port, hop.transport);
      out.push({ uri, to: uri, target: { transport: hop.transport, host: hop.host, port: hop.port }, gateway: g });
    }
  }
  return out;
}

type Answered = Leg & { answer?: SipResponse };

/**
 * Calls the targets one after the other (a registered user's devices, the gateways' hops) until one answers; the
 * leg is tried while the call being transferred is up (its end CANCELs it: the leg is one of the call's forks).
 */
async function dialFirst(
  core: CallCore,
  call: Call,
  from: string,
  targets: DialTarget[],
  referredBy: string,
  onGateway: (g: GatewayCandidate) => void,
): Promise<Answered> {
  let last = new TransferFailed(480, 'Temporarily Unavailable');
  for (const t of targets) {
    if (call.state !== 'connected') throw new TransferFailed(487, 'Request Terminated');
    if (t.gateway) onGateway(t.gateway);
    const leg: Answered = {
      ...newLeg({
        callId: generateCallId(),
        localTag: generateTag(),
        fromUri: core.ourUri(from, t.target.transport),
        toUri: t.to,
        ruri: t.uri,
        target: t.target,
        extra: [
          { name: 'Contact', value: core.contactFor(t.target.transport) },
          { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS, REFER' },
          { name: 'Referred-By', value: referredBy },
        ],
      }),
      gateway: t.gateway,
    };
    call.forks.push(leg);
    try {
      leg.answer = await invite(core, call, leg);
      return leg;
    } catch (e) {
      if (!(e instanceof TransferFailed)) throw e;
      last = e;
      // a user's refusal (busy, declined) is the answer; a gateway fails over as a call does
      if (e.status === 487 || (!t.gateway && (e.status === 486 || e.status === 603))) throw e;
      if (t.gateway && e.status >= 400 && e.status < 500 && ![408, 480, 486].includes(e.status)) throw e;
      if (e.status >= 600) throw e;
    } finally {
      call.forks = call.forks.filter((f) => f !== leg);
    }
  }
  throw last;
}

/** One INVITE of a transfer leg (a gateway's digest answered once); resolves with the 2xx (ACK still owed). */
function invite(core: CallCore, call: Call, leg: Answered): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    const send = () => {
      let ct;
      try {
        ct = core.stack.request(leg.invite!, leg.target);
      } catch {
        return reject(new TransferFailed(503, 'Service Unavailable'));
      }
      leg.ct = ct;
      let guard = setTimeout(() => expire(408, 'Request Timeout'), core.o.legTimeoutMs);
      guard.unref();
      const expire = (status: number, reason: string) => {
        clearTimeout(guard);
        if (!leg.done) cancelLeg(core, leg);
        reject(new TransferFailed(status, reason));
      };
      ct.on('provisional', (res: SipResponse) => {
        if (res.status === 100) return;
        clearTimeout(guard);
        guard = setTimeout(() => expire(408, 'Request Timeout'), core.o.ringTimeoutSeconds * 1000);
        guard.unref();
      });
      ct.on('final', (res: SipResponse) => {
        clearTimeout(guard);
        if (res.status >= 200 && res.status < 300) {
          confirmLeg(leg, res);
          if (leg.done || call.state !== 'connected') {
            // the transfer was given up (the call ended) while C answered
            sendAck(core.stack, leg, undefined, core.log);
            bye(core, leg);
            return reject(new TransferFailed(487, 'Request Terminated'));
          }
          leg.done = true;
          return resolve(res);
        }
        const challenged = res.status === 401 || res.status === 407;
        if (challenged && leg.gateway?.username && !leg.authTried && answerChallenge(leg, res, leg.gateway)) {
          leg.authTried = true;
          return send();
        }
        leg.done = true;
        reject(new TransferFailed(res.status, res.reason));
      });
      ct.on('timeout', () => expire(408, 'Request Timeout'));
      ct.on('transport-error', () => expire(503, 'Service Unavailable'));
    };
    send();
  });
}

/** A re-INVITE on a leg (with an offer, or none: the 2xx then offers); resolves with the 2xx, the ACK sent after. */
function reinvite(core: CallCore, leg: Leg, offer: { type: string; data: Buffer } | undefined): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    const extra = [{ name: 'Contact', value: core.contactFor(leg.target.transport) }];
    const ct = sendInDialog(core.stack, leg, 'INVITE', offer, extra, core.log);
    if (!ct) return reject(new TransferFailed(503, 'Service Unavailable'));
    const cseq = leg.cseq;
    ct.on('final', (res: SipResponse) => {
      if (res.status < 200 || res.status >= 300) return reject(new TransferFailed(res.status, res.reason));
      // an offer we sent is answered now: ACK at once; else the answer goes in the ACK (joinMedia)
      if (offer) core.stack.request(dialogRequest(leg, 'ACK', cseq), leg.target);
      (res as SipResponse & { ackCseq?: number }).ackCseq = cseq;
      resolve(res);
    });
    ct.on('timeout', () => reject(new TransferFailed(408, 'Request Timeout')));
    ct.on('transport-error', () => reject(new TransferFailed(503, 'Service Unavailable')));
  });
}

/**
 * T's media to C: C's 2xx (to an INVITE without SDP) holds C's offer; T is re-INVITEd with it and T's answer is
 * C's ACK. C's ACK is sent in every case (without a body when T refused: C's leg is then ended by the caller).
 */
async function joinMedia(core: CallCore, tLeg: Leg, cLeg: Leg, cRes: SipResponse) {
  const ackC = (body?: { type: string; data: Buffer }) => {
    const cseq = (cRes as SipResponse & { ackCseq?: number }).ackCseq ?? cLeg.cseq;
    try {
      core.stack.request(dialogRequest(cLeg, 'ACK', cseq, body), cLeg.target);
    } catch (e) {
      core.log.debug({ err: String(e) }, 'ACK not sent');
    }
  };
  const type = getHeader(cRes, 'Content-Type');
  if (!cRes.body.length || !type) {
    ackC();
    throw new TransferFailed(488, 'Not Acceptable Here (no SDP from the transfer target)');
  }
  let tRes: SipResponse;
  try {
    tRes = await reinvite(core, tLeg, { type, data: cRes.body });
  } catch (e) {
    ackC();
    throw e;
  }
  const tType = getHeader(tRes, 'Content-Type');
  ackC(tRes.body.length && tType ? { type: tType, data: tRes.body } : undefined);
}

/** The new call T ↔ C: T's leg as side a, C's as side b, connected. */
function bridge(
  core: CallCore,
  from: Call,
  tLeg: Leg,
  cLeg: Leg,
  o: {
    id: string;
    payer: number;
    callerName: string;
    calleeName: string;
    parties: string[];
    users: { a?: string; b?: string };
  },
): Call {
  return {
    ...o,
    aReq: from.aReq,
    aTx: from.aTx,
    aSrc: from.aSrc,
    a: tLeg,
    b: cLeg,
    forks: [cLeg],
    state: 'connected',
    answered: true,
    aAcked: true,
  };
}

/** The new call's dialogs take over from the ended calls' (called after their endCall removed them). */
function register(core: CallCore, call: Call, handlerFor: HandlerFor): void {
  for (const [side, leg] of [
    ['a', call.a],
    ['b', call.b!],
  ] as const) {
    core.byCallId.set(leg.callId, { call, side });
    core.dialogs.add(dialogIdOf(leg), handlerFor(core, call, side));
  }
  core.setState(call, 4);
}

/** Connect time, maxduration cut and disccall of the new call (its reservation was made before dialling). */
async function startBilling(core: CallCore, call: Call): Promise<void> {
  core.live.onHangup(call.id, '', (reason) => void endCall(core, call, reason, true));
  const maxReason = () => (core.live.get(call.id)?.capped ? 'max call age reached' : 'maxduration reached');
  await core.live
    .connected(call.id, '', { onMaxDuration: () => void endCall(core, call, maxReason(), true) })
    .catch((e) => core.log.warn({ err: String(e) }, 'live call connect not persisted'));
}
