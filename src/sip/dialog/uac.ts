/**
 * Outgoing legs: the dialogs in which we are the UAC (a B2BUA's B legs, both legs of call control). Builds the
 * INVITE, answers a gateway's 401/407 with its credentials (one digest writer, src/sip/services/digest.ts), takes the
 * dialog state from the 2xx, sends the ACK of a 2xx, in-dialog requests (BYE, re-INVITE) and CANCEL.
 */
import { getHeader, getHeaders, type SipHeader, type SipRequest, type SipResponse } from '../message/index.js';
import type { ClientTransaction, SipTarget } from '../stack.js';
import type { SipStackLike } from '../stack.js';
import { digestAnswer } from '../services/digest.js';
import { inDialogHeaders, type DialogIds } from './headers.js';

/** A dialog leg: the dialog ids plus where to send (remote target, transport target) and our CSeq. */
export interface DialogLeg extends DialogIds {
  remoteTarget: string;
  target: SipTarget;
  cseq: number;
  /** the INVITE sent on an outgoing leg */
  invite?: SipRequest;
}

type Sender = Pick<SipStackLike, 'request'>;
type Log = { debug(o: object, msg: string): void };

export interface InviteSpec {
  callId: string;
  localTag: string;
  /** From URI (ours) and its display name */
  fromUri: string;
  fromDisplay?: string;
  /** To URI and the Request-URI */
  toUri: string;
  ruri: string;
  target: SipTarget;
  /** headers after Call-ID and CSeq (Contact, Allow, User-Agent, session timers …) */
  extra: SipHeader[];
  body?: Buffer;
  contentType?: string;
  /** first CSeq (default 1) */
  cseq?: number;
}

/** A new outgoing leg with its INVITE (not sent yet). */
export function newLeg(s: InviteSpec): DialogLeg & { invite: SipRequest } {
  const cseq = s.cseq ?? 1;
  const leg = {
    callId: s.callId,
    localTag: s.localTag,
    remoteTag: null,
    localUri: s.fromUri,
    remoteUri: s.toUri,
    remoteTarget: s.ruri,
    routes: [] as string[],
    target: s.target,
    cseq,
  };
  const body = s.body ?? Buffer.alloc(0);
  const headers: SipHeader[] = [
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `${s.fromDisplay ? `${s.fromDisplay} ` : ''}<${s.fromUri}>;tag=${s.localTag}` },
    { name: 'To', value: `<${s.toUri}>` },
    { name: 'Call-ID', value: s.callId },
    { name: 'CSeq', value: `${cseq} INVITE` },
    ...s.extra,
  ];
  if (body.length && s.contentType) headers.push({ name: 'Content-Type', value: s.contentType });
  headers.push({ name: 'Content-Length', value: String(body.length) });
  return { ...leg, invite: { type: 'request', method: 'INVITE', uri: s.ruri, version: 'SIP/2.0', headers, body } };
}

/** The CSeq of an INVITE moved on for a new attempt on the same leg (a 401/407 or 422 retry). */
export function nextInvite(leg: DialogLeg, add: SipHeader[] = []): void {
  const inv = leg.invite!;
  leg.cseq++;
  const headers = inv.headers.map((x) => (x.name === 'CSeq' ? { name: 'CSeq', value: `${leg.cseq} INVITE` } : x));
  headers.splice(headers.length - 1, 0, ...add); // before Content-Length
  leg.invite = { ...inv, headers };
}

/**
 * Answers a 401/407 to the leg's INVITE with credentials: the INVITE gets the Authorization (or
 * Proxy-Authorization) and the next CSeq. False when the challenge cannot be answered.
 */
export function answerChallenge(leg: DialogLeg, res: SipResponse, creds: { username: string; password: string }) {
  const proxy = res.status === 407;
  const h = getHeader(res, proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate');
  const auth = h ? digestAnswer(h, creds.username, creds.password, 'INVITE', leg.invite!.uri) : null;
  if (!auth) return false;
  const name = proxy ? 'Proxy-Authorization' : 'Authorization';
  const kept = leg.invite!.headers.filter((x) => x.name !== name);
  leg.invite = { ...leg.invite!, headers: kept };
  nextInvite(leg, [{ name, value: auth }]);
  return true;
}

/** Dialog state from a 2xx (RFC 3261 §12.1.2): remote tag, remote target (Contact) and the route set. */
export function confirmLeg(leg: DialogLeg, res: SipResponse): void {
  leg.remoteTag = res.core?.to?.tag ?? null;
  leg.remoteTarget = res.core?.contact[0]?.uri.raw ?? leg.remoteTarget;
  leg.routes = getHeaders(res, 'Record-Route')
    .flatMap((v) => v.split(/,(?![^<]*>)/).map((s) => s.trim()))
    .reverse();
}

/** An in-dialog request of the leg with this CSeq (not sent). */
export function dialogRequest(
  leg: DialogLeg,
  method: string,
  cseq: number,
  body?: { type?: string; data: Buffer },
  extra: SipHeader[] = [],
): SipRequest {
  const headers = [...inDialogHeaders(leg, method, cseq), ...extra];
  const data = body?.data ?? Buffer.alloc(0);
  if (data.length && body?.type) headers.push({ name: 'Content-Type', value: body.type });
  headers.push({ name: 'Content-Length', value: String(data.length) });
  return { type: 'request', method, uri: leg.remoteTarget, version: 'SIP/2.0', headers, body: data };
}

/** Sends the ACK of the leg's 2xx (the INVITE's CSeq); returns it (to re-send on a 2xx retransmission). */
export function sendAck(stack: Sender, leg: DialogLeg, body?: { type?: string; data: Buffer }, log?: Log): SipRequest {
  const ack = dialogRequest(leg, 'ACK', leg.cseq, body);
  try {
    stack.request(ack, leg.target);
  } catch (e) {
    log?.debug({ err: String(e), callid: leg.callId }, 'ACK not sent');
  }
  return ack;
}

/** Sends an in-dialog request with the next CSeq; null when it cannot be sent. Its outcome is the caller's. */
export function sendInDialog(
  stack: Sender,
  leg: DialogLeg,
  method: string,
  body?: { type: string; data: Buffer },
  extra: SipHeader[] = [],
  log?: Log,
): ClientTransaction | null {
  leg.cseq++;
  try {
    const ct = stack.request(dialogRequest(leg, method, leg.cseq, body, extra), leg.target);
    ct.on('final', () => undefined);
    ct.on('timeout', () => log?.debug({ callid: leg.callId, method }, 'in-dialog request unanswered'));
    ct.on('transport-error', () => undefined);
    return ct;
  } catch (e) {
    log?.debug({ err: String(e), method, callid: leg.callId }, 'in-dialog request not sent');
    return null;
  }
}

/** Sends BYE on the leg. */
export function sendBye(stack: Sender, leg: DialogLeg, log?: Log): void {
  sendInDialog(stack, leg, 'BYE', undefined, [], log);
}

/** CANCELs a pending INVITE (no-op when its transaction is gone). */
export function cancelInvite(ct: ClientTransaction | undefined): void {
  try {
    ct?.cancel?.();
  } catch {
    /* gone */
  }
}
