// Serializer and response builders.

import { randomBytes, randomFillSync } from 'node:crypto';

// Tags and branches come from a pooled random buffer: one randomFillSync per 256 values instead of one call each.
const POOL = Buffer.allocUnsafe(4096);
let poolPos = POOL.length;
function randomHex16(): string {
  if (poolPos + 8 > POOL.length) {
    randomFillSync(POOL);
    poolPos = 0;
  }
  const s = POOL.toString('hex', poolPos, poolPos + 8);
  poolPos += 8;
  return s;
}
import { C_TOKEN, scan } from './chars.js';
import { nameIs } from './headers.js';
import { parseNameAddr } from './nameaddr.js';
import type { SipHeader, SipMessage, SipRequest, SipResponse } from './types.js';

export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  417: 'Unknown Resource-Priority',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  428: 'Use Identity Header',
  429: 'Provide Referrer Identity',
  433: 'Anonymity Disallowed',
  436: 'Bad Identity-Info',
  437: 'Unsupported Certificate',
  438: 'Invalid Identity Header',
  439: 'First Hop Lacks Outbound Support',
  440: 'Max-Breadth Exceeded',
  469: 'Bad Info Package',
  470: 'Consent Needed',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
  607: 'Unwanted',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'OK' : 'Error');
}

export class SipSerializeError extends Error {
  override name = 'SipSerializeError';
}

function hasCrLf(s: string): boolean {
  return s.indexOf('\r') >= 0 || s.indexOf('\n') >= 0;
}

/**
 * Serializes a message. Header names and values are written as stored (one line each, no
 * folding); Content-Length is always written with the real body length (the first
 * Content-Length line is rewritten in place, other ones dropped; added at the end if absent).
 * Throws SipSerializeError on values that would break framing (CR/LF, non-token names).
 */
export function serialize(msg: SipMessage): Buffer {
  let head: string;
  if (msg.type === 'request') {
    if (scan(msg.method, 0, msg.method.length, C_TOKEN) !== msg.method.length || msg.method.length === 0)
      throw new SipSerializeError('invalid method');
    if (msg.uri.length === 0 || msg.uri.indexOf(' ') >= 0 || hasCrLf(msg.uri))
      throw new SipSerializeError('invalid Request-URI');
    head = msg.method + ' ' + msg.uri + ' ' + (msg.version || 'SIP/2.0') + '\r\n';
  } else {
    if (!Number.isInteger(msg.status) || msg.status < 100 || msg.status > 699)
      throw new SipSerializeError('invalid status');
    if (hasCrLf(msg.reason)) throw new SipSerializeError('invalid reason phrase');
    head = (msg.version || 'SIP/2.0') + ' ' + msg.status + ' ' + msg.reason + '\r\n';
  }
  const body = msg.body ?? Buffer.alloc(0);
  let clDone = false;
  for (const h of msg.headers) {
    if (h.name.length === 0 || scan(h.name, 0, h.name.length, C_TOKEN) !== h.name.length)
      throw new SipSerializeError('invalid header name: ' + JSON.stringify(h.name));
    if (nameIs(h.name, 'content-length')) {
      if (clDone) continue;
      clDone = true;
      head += h.name + ': ' + body.length + '\r\n';
      continue;
    }
    if (hasCrLf(h.value)) throw new SipSerializeError('CR/LF in value of ' + h.name);
    head += h.name + ': ' + h.value + '\r\n';
  }
  if (!clDone) head += 'Content-Length: ' + body.length + '\r\n';
  head += '\r\n';
  const hl = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(hl + body.length);
  out.write(head, 0, hl, 'utf8');
  body.copy(out, hl);
  return out;
}

/** Random tag (RFC 3261 §19.3: at least 32 bits of randomness). */
export function generateTag(): string {
  return randomHex16();
}

/** Random RFC 3261 branch (magic cookie + 64 random bits). */
export function generateBranch(): string {
  return 'z9hG4bK' + randomHex16();
}

/**
 * Marker put at the start of every Call-ID this process generates (`w2.` in worker 2 of `serve --workers N`, empty
 * in a single process): a message of a dialog voxswitch created is handed back to the worker that created it
 * (src/sip/transport/handoff.ts reads it).
 */
let callIdMarker = '';

/** Sets the marker of generated Call-IDs (the transport's worker hand-off does, once at start). */
export function setCallIdMarker(marker: string): void {
  callIdMarker = marker;
}

/** The marker generated Call-IDs start with ('' without workers), for ids built elsewhere (3pcc). */
export function callIdMarkerOf(): string {
  return callIdMarker;
}

/** Random Call-ID (96 random bits after the worker marker, if any). */
export function generateCallId(host?: string): string {
  const id = callIdMarker + randomBytes(12).toString('hex');
  return host ? id + '@' + host : id;
}

export interface ResponseOptions {
  /** To-tag to add when the request's To has none (default: random; not added to 100). */
  toTag?: string;
  /** Extra headers appended after the copied ones. */
  headers?: SipHeader[];
  body?: Buffer;
  /** Content-Type for the body. */
  contentType?: string;
}

const DIALOG_METHODS = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

function hasToTag(value: string): boolean {
  const na = parseNameAddr(value);
  if (na) return na.tag !== null;
  // Unparseable To (best-effort response to a rejected request): look for a tag param.
  return /;\s*tag\s*=/i.test(value);
}

/**
 * Builds a response to a request (RFC 3261 §8.2.6): copies all Via lines (in order), From,
 * To (adding a To-tag unless present or status 100), Call-ID, CSeq, Timestamp (100 only) and
 * Record-Route (101-299 to dialog-creating methods). Works on a `partial` request from a
 * failed parse too (header values copied verbatim).
 */
export function createResponse(
  req: Pick<SipRequest, 'method' | 'headers'> & Partial<SipRequest>,
  status: number,
  reason?: string,
  opts?: ResponseOptions,
): SipResponse {
  const headers: SipHeader[] = [];
  let toDone = false;
  for (const h of req.headers) {
    if (nameIs(h.name, 'via') || nameIs(h.name, 'from') || nameIs(h.name, 'call-id') || nameIs(h.name, 'cseq')) {
      headers.push({ name: h.name, value: h.value });
    } else if (nameIs(h.name, 'to')) {
      if (toDone) continue; // only the first To
      toDone = true;
      let value = h.value;
      if (status > 100 && !hasToTag(value)) value += ';tag=' + (opts?.toTag ?? generateTag());
      headers.push({ name: h.name, value });
    } else if (status === 100 && nameIs(h.name, 'timestamp')) {
      headers.push({ name: h.name, value: h.value });
    } else if (status > 100 && status < 300 && DIALOG_METHODS.has(req.method) && nameIs(h.name, 'record-route')) {
      headers.push({ name: h.name, value: h.value });
    }
  }
  if (opts?.headers) for (const h of opts.headers) headers.push({ name: h.name, value: h.value });
  const body = opts?.body ?? Buffer.alloc(0);
  if (body.length && opts?.contentType) headers.push({ name: 'Content-Type', value: opts.contentType });
  headers.push({ name: 'Content-Length', value: String(body.length) });
  return { type: 'response', version: 'SIP/2.0', status, reason: reason ?? reasonPhrase(status), headers, body };
}

/** Convenience: serialized response for a request. */
export function buildResponse(
  req: Pick<SipRequest, 'method' | 'headers'> & Partial<SipRequest>,
  status: number,
  reason?: string,
  opts?: ResponseOptions,
): Buffer {
  return serialize(createResponse(req, status, reason, opts));
}
