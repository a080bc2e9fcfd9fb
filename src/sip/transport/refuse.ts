/**
 * The overload refusal read straight from a datagram's bytes: a new INVITE or REGISTER (no To tag, no
 * Authorization or Proxy-Authorization) gets a stateless `503 Service Unavailable` with Retry-After built from its
 * own Via/From/To/Call-ID/CSeq lines, without the full parse, a transaction or anything above the transport. Any
 * message this reader is not sure of (folded lines, several Vias in one line, a header missing) is left to the
 * normal path, which refuses it in its turn.
 */
import { generateTag } from '../message/index.js';
import type { SipSource } from './types.js';

const INVITE = Buffer.from('INVITE ');
const REGISTER = Buffer.from('REGISTER ');
const END = Buffer.from('\r\n\r\n');
/** The headers of a request are looked for in its first 4 KB; a longer head goes the normal way. */
const HEAD_MAX = 4096;

/** True when the datagram starts with `INVITE ` or `REGISTER ` (the only requests this refusal is for). */
export function isNewRequestCandidate(buf: Buffer): boolean {
  const c = buf[0];
  if (c === 0x49) return buf.length > INVITE.length && buf.compare(INVITE, 0, INVITE.length, 0, INVITE.length) === 0;
  if (c === 0x52)
    return buf.length > REGISTER.length && buf.compare(REGISTER, 0, REGISTER.length, 0, REGISTER.length) === 0;
  return false;
}

function viaStamped(value: string, src: SipSource): string {
  let v = value.replace(/;\s*rport(?=\s*(;|$))/i, `;rport=${src.port}`);
  if (!/;\s*received\s*=/i.test(v)) v += `;received=${src.ip}`;
  return v;
}

/**
 * The 503 answer to `buf` when it is a new INVITE or REGISTER without credentials, null when it is anything else
 * or not plainly readable (the caller then hands it to the parser as usual).
 */
export function quickRefusal(buf: Buffer, src: SipSource, retryAfter: number): Buffer | null {
  if (!isNewRequestCandidate(buf)) return null;
  const end = buf.indexOf(END);
  if (end < 0 || end > HEAD_MAX) return null;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const method = lines[0]!.slice(0, lines[0]!.indexOf(' '));
  if (!/ SIP\/2\.0$/.test(lines[0]!)) return null;
  const vias: string[] = [];
  let from: string | null = null;
  let to: string | null = null;
  let callId: string | null = null;
  let cseq: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.charCodeAt(0);
    if (c === 0x20 || c === 0x09) return null; // a folded line: the parser's job
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (name) {
      case 'via':
      case 'v':
        if (value.includes(',')) return null;
        vias.push(value);
        break;
      case 'from':
      case 'f':
        if (from !== null) return null;
        from = value;
        break;
      case 'to':
      case 't':
        if (to !== null || /;\s*tag\s*=/i.test(value)) return null; // in a dialog: never refused here
        to = value;
        break;
      case 'call-id':
      case 'i':
        if (callId !== null) return null;
        callId = value;
        break;
      case 'cseq':
        if (cseq !== null || !value.endsWith(' ' + method)) return null;
        cseq = value;
        break;
      case 'authorization':
      case 'proxy-authorization':
        return null; // answers our challenge: admitted work, never refused
    }
  }
  if (vias.length === 0 || from === null || to === null || callId === null || cseq === null) return null;
  const out = ['SIP/2.0 503 Service Unavailable', `Via: ${viaStamped(vias[0]!, src)}`];
  for (let i = 1; i < vias.length; i++) out.push(`Via: ${vias[i]}`);
  out.push(
    `From: ${from}`,
    `To: ${to};tag=${generateTag()}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq}`,
    `Retry-After: ${retryAfter}`,
    'Content-Length: 0',
    '',
    '',
  );
  return Buffer.from(out.join('\r\n'), 'latin1');
}

/**
 * `wait()`: the Retry-After seconds while new INVITE/REGISTER datagrams are to be refused before they are parsed,
 * else 0 (asked only for datagrams that start with INVITE or REGISTER); `refused()` counts one refusal.
 */
export interface EarlyGate {
  wait(): number;
  refused(): void;
}

/** The 503 to send instead of parsing `buf` while the gate refuses, else null (the datagram goes on as usual). */
export function earlyRefusal(gate: EarlyGate, buf: Buffer, src: SipSource): Buffer | null {
  const wait = gate.wait();
  if (!wait) return null;
  const answer = quickRefusal(buf, src, wait);
  if (answer !== null) gate.refused();
  return answer;
}
