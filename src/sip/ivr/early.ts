/**
 * An IVR dialogue in early media: the caller's INVITE gets 183 Session Progress with the IVR's SDP (a port of the
 * relay's pool), prompts are played and digits collected (RFC 4733 in RTP, or SIP INFO in the early dialog), and the
 * INVITE stays unanswered meanwhile, so nothing is billed and the caller's side pays nothing for the dialogue. What
 * the script decides then happens on the same INVITE: a final refusal (with a clear reason), or the call goes on
 * (routed, or joined to a room) and its 200 carries the SDP of what it reached (RFC 3261 §13.2.1: the 183 was not
 * sent reliably, so the final answer's SDP is the one the caller uses).
 */
import { getHeader, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { DialogTable } from '../dialog/table.js';
import type { CallMedia } from '../media/index.js';
import { chooseCodec } from '../conference/sdp.js';
import { IvrMedia, ivrAnswerSdp } from './session.js';
import type { PromptStore } from './prompts.js';
import type { Respond } from '../product.js';

export interface EarlyIvrHost {
  media: CallMedia;
  dialogs: DialogTable;
  prompts: PromptStore;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  respond: Respond;
}

export type EarlyOutcome<T> =
  | { kind: 'done'; value: T }
  /** the caller cancelled (487 sent) */
  | { kind: 'cancelled' }
  /** no G.711 offer, or no media port (the INVITE was answered with the reason) */
  | { kind: 'refused' };

/**
 * Runs `script` with the caller's IVR media in early media. `port` may be given (a pair the caller keeps, e.g. a
 * conference's); else one is taken from the pool and returned after. The INVITE is not answered finally here
 * except on cancel / refusal.
 */
export async function earlyIvr<T>(
  host: EarlyIvrHost,
  req: SipRequest,
  tx: ServerTransaction,
  src: SipSource,
  localTag: string,
  script: (ivr: IvrMedia) => Promise<T>,
  pair?: { port: number; bindAddr: string; address: string },
): Promise<EarlyOutcome<T>> {
  const codec = chooseCodec(req.body, getHeader(req, 'Content-Type'));
  if (!codec) {
    host.respond(
      tx,
      req,
      488,
      'Not Acceptable Here (the IVR takes PCMU or PCMA, offered in the INVITE)',
      [],
      undefined,
      localTag,
    );
    return { kind: 'refused' };
  }
  const own = !pair;
  let ivr: IvrMedia;
  try {
    pair ??= await host.media.localPair(src.localIp);
    ivr = await IvrMedia.open({
      port: pair.port,
      bindAddr: pair.bindAddr,
      remote: { host: codec.address || src.ip, port: codec.port },
      codec: codec.codec,
      offer: req.body,
      prompts: host.prompts,
    });
  } catch (e) {
    if (own && pair) host.media.releaseLocalPair(pair.port);
    host.log.warn({ err: String((e as Error)?.message ?? e) }, 'IVR media unavailable');
    host.respond(tx, req, 503, 'Service Unavailable (no media port for the IVR)', [], undefined, localTag);
    return { kind: 'refused' };
  }
  const c = req.core!;
  const id = { callId: c.callId ?? '', localTag, remoteTag: c.from?.tag ?? '' };
  let cancelled = false;
  host.dialogs.add(id, (r, t) => {
    if (r.method === 'CANCEL') {
      if (t) host.respond(t, r, 200, 'OK', [], undefined, localTag);
      cancelled = true;
      ivr.digits.abort();
      void ivr.close();
    } else if (r.method === 'INFO') {
      const ok = ivr.dtmf.info(getHeader(r, 'Content-Type') ?? '', r.body);
      if (t) host.respond(t, r, ok ? 200 : 415, ok ? 'OK' : 'Unsupported Media Type', [], undefined, localTag);
    } else if (t && r.method !== 'ACK') {
      host.respond(t, r, 481, 'Call/Transaction Does Not Exist', [], undefined, localTag);
    }
  });
  const sdp = ivrAnswerSdp(pair.address, pair.port, codec.codec, ivr.dtmf.payloadType);
  host.respond(tx, req, 183, 'Session Progress', [], { type: 'application/sdp', data: sdp }, localTag);
  try {
    const value = await script(ivr);
    if (cancelled || tx.cancelled) {
      host.respond(tx, req, 487, 'Request Terminated', [], undefined, localTag);
      return { kind: 'cancelled' };
    }
    host.log.info({ callid: c.callId, digits: ivr.heard.length }, 'IVR dialogue done');
    return { kind: 'done', value };
  } finally {
    host.dialogs.remove(id);
    await ivr.close();
    if (own) host.media.releaseLocalPair(pair.port);
  }
}
