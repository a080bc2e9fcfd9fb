/** Headers of a request sent inside an established dialog (RFC 3261 §12.2.1.1), shared by every in-dialog sender. */
import type { SipHeader } from '../message/index.js';

/** The dialog state an in-dialog request is built from. */
export interface DialogIds {
  callId: string;
  localTag: string;
  remoteTag: string | null;
  localUri: string;
  remoteUri: string;
  /** route set, in order */
  routes: string[];
}

/** Route set, Max-Forwards, From (local tag), To (remote tag), Call-ID and CSeq, in that order. */
export function inDialogHeaders(d: DialogIds, method: string, cseq: number): SipHeader[] {
  const headers: SipHeader[] = [];
  for (const r of d.routes) headers.push({ name: 'Route', value: r });
  headers.push(
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<${d.localUri}>;tag=${d.localTag}` },
    { name: 'To', value: `<${d.remoteUri}>${d.remoteTag ? `;tag=${d.remoteTag}` : ''}` },
    { name: 'Call-ID', value: d.callId },
    { name: 'CSeq', value: `${cseq} ${method}` },
  );
  return headers;
}
