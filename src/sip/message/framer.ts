// Stream (TCP/TLS) framing by Content-Length (RFC 3261 §18.3), with RFC 5626 CRLF keep-alives.

import { parseMessage } from './parser.js';
import type { ParseResult } from './types.js';

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

export const DEFAULT_MAX_MESSAGE_SIZE = 65535;

export type FrameResult =
  /** A complete message occupies buf[start..end). */
  | { kind: 'message'; end: number }
  /** Not enough bytes yet; `total` is the full message length once the header section is complete. */
  | { kind: 'more'; total?: number }
  /** The stream cannot be framed any more: answer if possible, then close the connection. */
  | { kind: 'error'; status: number; reason: string };

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

const CL_NAME = 'content-length';

/** When line [a..e) is a Content-Length header (long or compact), the index of its ':'; else -1. */
function contentLengthColon(buf: Buffer, a: number, e: number): number {
  const c0 = lower(buf[a]!);
  let p: number;
  if (c0 === 0x6c /* l */) {
    p = a + 1;
  } else if (c0 === 0x63 /* c */ && e - a > CL_NAME.length) {
    for (let i = 1; i < CL_NAME.length; i++) if (lower(buf[a + i]!) !== CL_NAME.charCodeAt(i)) return -1;
    p = a + CL_NAME.length;
  } else return -1;
  while (p < e && (buf[p] === 32 || buf[p] === 9)) p++;
  return p < e && buf[p] === 58 ? p : -1;
}

/**
 * Frames one message at buf[start..]. Leading CRLFs must have been consumed by the caller
 * (see SipStreamFramer). Content-Length is mandatory unless `requireContentLength` is false
 * (then missing means 0). `searchFrom` (≥ start) skips bytes already known to hold no
 * CRLFCRLF. Never throws.
 */
export function frameMessage(
  buf: Buffer,
  start = 0,
  maxSize = DEFAULT_MAX_MESSAGE_SIZE,
  requireContentLength = true,
  searchFrom = start,
): FrameResult {
  const he = buf.indexOf(CRLFCRLF, Math.max(start, searchFrom));
  if (he < 0) {
    if (buf.length - start > maxSize) return { kind: 'error', status: 513, reason: 'Header section too large' };
    return { kind: 'more' };
  }
  if (he + 4 - start > maxSize) return { kind: 'error', status: 513, reason: 'Header section too large' };
  let cl = -1;
  let seen = 0;
  // Skip the start line, then look at each header line.
  let ls = buf.indexOf(CRLF, start);
  while (ls >= 0 && ls < he) {
    const a = ls + 2;
    let e = buf.indexOf(CRLF, a);
    if (e < 0 || e > he) e = he;
    const colon = a < e ? contentLengthColon(buf, a, e) : -1;
    if (colon >= 0) {
      seen++;
      if (seen > 1) return { kind: 'error', status: 400, reason: 'Multiple Content-Length headers' };
      // value, possibly continued on folded lines
      let ve = e;
      while (ve + 2 < he && (buf[ve + 2] === 32 || buf[ve + 2] === 9)) {
        const ne = buf.indexOf(CRLF, ve + 2);
        ve = ne < 0 || ne > he ? he : ne;
      }
      let v = 0;
      let digits = 0;
      for (let i = colon + 1; i < ve; i++) {
        const c = buf[i]!;
        if (c === 32 || c === 9 || c === 13 || c === 10) {
          if (digits > 0) {
            // only trailing whitespace allowed after the digits
            for (let j = i; j < ve; j++) {
              const d = buf[j]!;
              if (d !== 32 && d !== 9 && d !== 13 && d !== 10)
                return { kind: 'error', status: 400, reason: 'Malformed Content-Length' };
            }
            break;
          }
          continue;
        }
        if (c < 48 || c > 57) return { kind: 'error', status: 400, reason: 'Malformed Content-Length' };
        v = v * 10 + (c - 48);
        digits++;
        if (v > maxSize) return { kind: 'error', status: 513, reason: 'Message too large' };
      }
      if (digits === 0) return { kind: 'error', status: 400, reason: 'Malformed Content-Length' };
      cl = v;
      e = ve;
    }
    ls = e;
    if (e >= he) break;
  }
  if (cl < 0) {
    if (requireContentLength) return { kind: 'error', status: 400, reason: 'Missing Content-Length on a stream' };
    cl = 0;
  }
  const end = he + 4 + cl;
  if (end - start > maxSize) return { kind: 'error', status: 513, reason: 'Message too large' };
  if (end > buf.length) return { kind: 'more', total: end - start };
  return { kind: 'message', end };
}

export type FramerEvent =
  | { type: 'message'; data: Buffer; result: ParseResult }
  /** CRLFCRLF ping (answer with a CRLF pong) or a CRLF pong (RFC 5626 §3.5.1). */
  | { type: 'keepalive'; ping: boolean }
  /** Fatal framing error: the framer is dead; close the connection (after a 400/513 if useful). */
  | { type: 'error'; status: number; reason: string };

export interface FramerOptions {
  /** Maximum size of one message (headers + body). Default 65535. */
  maxMessageSize?: number;
  /** Missing Content-Length on a stream is a framing error (default true, strict). */
  requireContentLength?: boolean;
}

/**
 * Incremental framer for one stream connection. Feed it chunks with push(); it returns the
 * complete messages (already parsed with `{stream: true}`), keep-alives, and at most one
 * fatal error. Incomplete data is kept until more bytes arrive (the caller owns the idle timeout,
 * e.g. for a Content-Length larger than what is ever sent).
 *
 * Cost is linear in the bytes received even when they trickle in one at a time: pending bytes
 * live in a growable buffer, the header-end search resumes where it stopped, and once a
 * message's length is known it is not framed again.
 */
export class SipStreamFramer {
  private store: Buffer = Buffer.alloc(0);
  private len = 0;
  /** Offset (in the pending data) from which to resume the CRLFCRLF search. */
  private searched = 0;
  /** Total length of the pending message once its header section has been framed, else -1. */
  private pendingEnd = -1;
  private dead = false;
  private readonly maxSize: number;
  private readonly requireCl: boolean;

  constructor(opts?: FramerOptions) {
    this.maxSize = opts?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.requireCl = opts?.requireContentLength ?? true;
  }

  /** Bytes waiting for the rest of a message. */
  get buffered(): number {
    return this.len;
  }

  get failed(): boolean {
    return this.dead;
  }

  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.dead) {
      events.push({ type: 'error', status: 400, reason: 'Stream already failed' });
      return events;
    }
    if (chunk.length === 0) return events;
    // Fast path: nothing pending, work on the chunk itself (zero copy).
    let buf: Buffer;
    const direct = this.len === 0;
    if (direct) buf = chunk;
    else {
      this.append(chunk);
      buf = this.store.subarray(0, this.len);
    }
    let pos = 0;
    for (;;) {
      if (this.pendingEnd < 0) {
        // keep-alives / CRLFs between messages
        let wait = false;
        while (pos < buf.length && buf[pos] === 13) {
          const rem = buf.length - pos;
          if (rem >= 4 && buf[pos + 1] === 10 && buf[pos + 2] === 13 && buf[pos + 3] === 10) {
            events.push({ type: 'keepalive', ping: true });
            pos += 4;
          } else if (rem >= 2 && buf[pos + 1] === 10 && (rem === 2 || buf[pos + 2] !== 13)) {
            events.push({ type: 'keepalive', ping: false });
            pos += 2;
          } else if (rem < 4) {
            wait = true; // could be the start of CRLFCRLF
            break;
          } else {
            this.fail(events, 'Bare CR between messages');
            return events;
          }
        }
        if (wait || pos >= buf.length) break;
        const r = frameMessage(buf, pos, this.maxSize, this.requireCl, pos + this.searched);
        if (r.kind === 'error') {
          this.fail(events, r.reason, r.status);
          return events;
        }
        if (r.kind === 'more') {
          if (r.total !== undefined) this.pendingEnd = r.total;
          else this.searched = Math.max(0, buf.length - pos - 3); // resume the search there
          break;
        }
        this.emit(events, buf, pos, r.end, direct);
        pos = r.end;
        this.searched = 0;
      } else {
        const end = pos + this.pendingEnd;
        if (end > buf.length) break;
        this.emit(events, buf, pos, end, direct);
        pos = end;
        this.pendingEnd = -1;
        this.searched = 0;
      }
    }
    // keep the remainder
    const rem = buf.length - pos;
    if (direct) {
      this.len = 0;
      if (rem > 0) this.append(buf.subarray(pos));
    } else if (pos > 0) {
      this.store.copyWithin(0, pos, this.len);
      this.len = rem;
    }
    if (this.store.length > 65536 && this.len < this.store.length / 4) {
      // shrink after a big message
      const nb = Buffer.allocUnsafe(Math.max(4096, this.len * 2));
      this.store.copy(nb, 0, 0, this.len);
      this.store = nb;
    }
    return events;
  }

  reset(): void {
    this.store = Buffer.alloc(0);
    this.len = 0;
    this.searched = 0;
    this.pendingEnd = -1;
    this.dead = false;
  }

  private emit(events: FramerEvent[], buf: Buffer, a: number, b: number, direct: boolean): void {
    // Frames cut from the internal store are copied: the store is reused afterwards.
    const data = direct ? buf.subarray(a, b) : Buffer.from(buf.subarray(a, b));
    events.push({ type: 'message', data, result: parseMessage(data, { stream: true }) });
  }

  private append(chunk: Buffer): void {
    const need = this.len + chunk.length;
    if (need > this.store.length) {
      const nb = Buffer.allocUnsafe(Math.max(need, this.store.length * 2, 4096));
      this.store.copy(nb, 0, 0, this.len);
      this.store = nb;
    }
    chunk.copy(this.store, this.len);
    this.len = need;
  }

  private fail(events: FramerEvent[], reason: string, status = 400): void {
    this.dead = true;
    this.store = Buffer.alloc(0);
    this.len = 0;
    events.push({ type: 'error', status, reason });
  }
}
