/** Incoming legs: the dialog of a request we answer as the UAS (RFC 3261 §12.1.1), from the request and its source. */
import { getHeaders, type SipRequest } from '../message/index.js';
import type { SipSource } from '../stack.js';
import { targetOf } from '../transport/types.js';
import type { DialogLeg } from './uac.js';

/** The dialog state of an INVITE we answer with `localTag`: our URI is its To, the remote target its Contact. */
export function incomingLeg(req: SipRequest, src: SipSource, localTag: string): DialogLeg {
  const c = req.core!;
  return {
    callId: c.callId!,
    localTag,
    remoteTag: c.from?.tag ?? null,
    localUri: c.to!.uri.raw,
    remoteUri: c.from!.uri.raw,
    remoteTarget: c.contact[0]?.uri.raw ?? c.from!.uri.raw,
    routes: getHeaders(req, 'Record-Route'),
    target: targetOf(src),
    cseq: 0,
  };
}
