/**
 * B2BUA in-dialog requests, routed here by the dialog table: A's ACK (and the delayed-offer ACK of B), BYE from
 * either side, CANCEL from A, re-INVITEs (hold, codec change, session refresh), UPDATE (RFC 3311) and INFO (e.g.
 * DTMF relay) passed through to the other leg, its answer back; REFER (call transfer) to ./transfer.ts.
 */
import { getHeader, type SipRequest, type SipResponse } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { InDialogHandler } from '../dialog/table.js';
import { dialogRequest, sendAck, sendInDialog } from '../dialog/uac.js';
import { bodyOf, sentRequest } from './sessiontimer.js';
import { dialogIdOf, type Call, type CallCore, type Side } from './core.js';
import { bye, cancelLeg, endCall } from './teardown.js';
import { onRefer } from './transfer.js';

/** The dialog-table handler of one side of a call. */
export function inDialogHandler(core: CallCore, call: Call, side: Side): InDialogHandler {
  return (req: SipRequest, tx: ServerTransaction | undefined, src: SipSource) => {
    if (req.method === 'ACK') return onAck(core, call, side, req);
    if (!tx) return;
    switch (req.method) {
      case 'BYE':
        return onBye(core, call, side, req, tx);
      case 'CANCEL':
        return onCancel(core, call, side, req, tx);
      case 'INVITE':
        return onReInvite(core, call, side, req, tx, src);
      case 'UPDATE':
      case 'INFO':
        return onPassOn(core, call, side, req, tx);
      case 'REFER':
        return onRefer(core, call, side, req, tx, inDialogHandler);
      default:
        return core.respond(tx, req, 501, 'Not Implemented', [], undefined, (side === 'a' ? call.a : call.b)?.localTag);
    }
  };
}

function onAck(core: CallCore, call: Call, side: Side, req: SipRequest): void {
  if (side !== 'a') return;
  call.aAcked = true;
  if (call.pendingAck && call.b) {
    call.pendingAck = false;
    const type = getHeader(req, 'Content-Type');
    const data = core.media.sdp(call, 'a', req.body, type); // RTP relay
    call.bAck = sendAck(core.stack, call.b, { type, data }, core.log);
  }
}

async function onBye(core: CallCore, call: Call, side: Side, req: SipRequest, tx: ServerTransaction) {
  core.respond(tx, req, 200, 'OK');
  if (call.state === 'ended') return;
  if (call.transferring === side && call.state === 'connected') {
    // the referrer hangs up while its transfer goes on (phones do right after the 202): only its leg ends
    call.referrerGone = true;
    core.dialogs.remove(dialogIdOf(side === 'a' ? call.a : call.b!));
    core.timers.disarm(side === 'a' ? call.a : call.b);
    return;
  }
  if (side === 'a') {
    if (call.b) bye(core, call.b);
    if (call.state !== 'connected') {
      for (const f of call.forks) cancelLeg(core, f);
    }
  } else {
    bye(core, call.a);
  }
  const wasConnected = call.state === 'connected';
  // a BYE from A before the answer (RFC 3261 §15): its INVITE is ended with 487
  if (side === 'a' && !wasConnected)
    core.respond(call.aTx, call.aReq, 487, 'Request Terminated', [], undefined, call.a.localTag);
  const reason = wasConnected ? (side === 'a' ? 'normal (caller hung up)' : 'normal (callee hung up)') : 'cancelled';
  await endCall(core, call, reason, false);
}

async function onCancel(core: CallCore, call: Call, side: Side, req: SipRequest, tx: ServerTransaction) {
  core.respond(tx, req, 200, 'OK');
  if (side !== 'a') return;
  if (call.state === 'connected' || call.state === 'ended') return;
  core.respond(call.aTx, call.aReq, 487, 'Request Terminated', [], undefined, call.a.localTag);
  await endCall(core, call, 'cancelled', false);
}

/** re-INVITE passthrough (hold, codec change, session refresh): relayed to the other leg, its answer relayed back. */
async function onReInvite(
  core: CallCore,
  call: Call,
  side: Side,
  req: SipRequest,
  tx: ServerTransaction,
  _src: SipSource,
): Promise<void> {
  if (call.state !== 'connected' || !call.b) return core.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
  const mine = side === 'a' ? call.a : call.b;
  const other = side === 'a' ? call.b : call.a;
  const tooSmall = core.timers.tooSmall(req);
  if (tooSmall) return core.respond(tx, req, 422, 'Session Interval Too Small', tooSmall, undefined, mine.localTag);
  const ctype = getHeader(req, 'Content-Type');
  const ct = sendInDialog(
    core.stack,
    other,
    'INVITE',
    req.body.length && ctype
      ? { type: ctype, data: core.media.sdp(call, side, req.body, ctype) /* RTP relay */ }
      : undefined,
    [{ name: 'Contact', value: core.contactFor(other.target.transport) }, ...core.timers.requestHeaders(other)],
    core.log,
  );
  if (!ct) return core.respond(tx, req, 500, 'Server Internal Error');
  const cseq = other.cseq;
  const back = side === 'a' ? 'b' : 'a';
  ct.on('final', (res: SipResponse) => {
    const rct = getHeader(res, 'Content-Type');
    const answer = () =>
      res.body.length && rct ? { type: rct, data: core.media.sdp(call, back, res.body, rct) } : undefined;
    if (res.status >= 200 && res.status < 300) {
      // ACK the other side at once (a re-INVITE always carries the offer here or gets it in the 2xx)
      try {
        core.stack.request(dialogRequest(other, 'ACK', cseq), other.target);
      } catch {
        /* ignore */
      }
    }
    const st = core.timers.reinvited(mine, req, other, res, () => bodyOf(sentRequest(ct)), answer);
    core.respond(
      tx,
      req,
      res.status,
      res.reason,
      [{ name: 'Contact', value: core.contactFor(mine.target.transport) }, ...st],
      answer() /* RTP relay */,
      mine.localTag,
    );
  });
  ct.on('timeout', () => core.respond(tx, req, 408, 'Request Timeout'));
  ct.on('transport-error', () => core.respond(tx, req, 503, 'Service Unavailable'));
}

/** UPDATE / INFO passthrough: the same request on the other leg (an UPDATE's SDP through the RTP relay). */
function onPassOn(core: CallCore, call: Call, side: Side, req: SipRequest, tx: ServerTransaction): void {
  if (call.state !== 'connected' || !call.b) return core.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
  const mine = side === 'a' ? call.a : call.b;
  const other = side === 'a' ? call.b : call.a;
  const back = side === 'a' ? 'b' : 'a';
  const sdp = req.method === 'UPDATE';
  const pass = (msg: { body: Buffer; headers: SipRequest['headers'] }, from: Side) => {
    const type = getHeader(msg, 'Content-Type');
    if (!msg.body.length || !type) return undefined;
    return { type, data: sdp ? core.media.sdp(call, from, msg.body, type) /* RTP relay */ : msg.body };
  };
  const contact = (leg: typeof mine) =>
    sdp ? [{ name: 'Contact', value: core.contactFor(leg.target.transport) }] : [];
  const ct = sendInDialog(core.stack, other, req.method, pass(req, side), contact(other), core.log);
  if (!ct) return core.respond(tx, req, 500, 'Server Internal Error', [], undefined, mine.localTag);
  ct.on('final', (res: SipResponse) =>
    core.respond(tx, req, res.status, res.reason, contact(mine), pass(res, back), mine.localTag),
  );
  ct.on('timeout', () => core.respond(tx, req, 408, 'Request Timeout', [], undefined, mine.localTag));
  ct.on('transport-error', () => core.respond(tx, req, 503, 'Service Unavailable', [], undefined, mine.localTag));
}
