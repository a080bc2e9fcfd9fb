// SIP message parser (RFC 3261 §7, §25). Never throws.
//
// Framing and the body are handled on the Buffer; the header section is validated as UTF-8,
// decoded once, and tokenized with charCode scans (no regular expressions).

import { isUtf8 } from 'node:buffer';
import { C_DIGIT, C_TOKEN, HTAB, SP, eqIgnoreCase, isWs, scan, skipWs, trimWs } from './chars.js';
import { nameIs, isValidCallId, parseCSeq, parseContentLength, parseMaxForwards } from './headers.js';
import { parseNameAddr, parseNameAddrList } from './nameaddr.js';
import type { CoreHeaders, ParseOptions, ParseResult, SipHeader, SipRequest, SipResponse } from './types.js';
import { parseUri } from './uri.js';
import { parseVia } from './via.js';

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** Reason returned if the parser hit an unexpected internal exception. */
export const INTERNAL_ERROR = 'Internal parser error';

type ParseFailure = Extract<ParseResult, { ok: false }>;

const enum H {
  Other,
  Via,
  From,
  To,
  CallId,
  CSeq,
  MaxForwards,
  ContentLength,
  Contact,
  Route,
  RecordRoute,
}

function coreKind(name: string): H {
  const len = name.length;
  const c0 = name.charCodeAt(0) | 0x20;
  if (len === 1) {
    switch (c0) {
      case 0x76:
        return H.Via; // v
      case 0x66:
        return H.From; // f
      case 0x74:
        return H.To; // t
      case 0x69:
        return H.CallId; // i
      case 0x6c:
        return H.ContentLength; // l
      case 0x6d:
        return H.Contact; // m
      default:
        return H.Other;
    }
  }
  switch (c0) {
    case 0x76:
      return len === 3 && eqIgnoreCase(name, 'via') ? H.Via : H.Other;
    case 0x66:
      return len === 4 && eqIgnoreCase(name, 'from') ? H.From : H.Other;
    case 0x74:
      return len === 2 && eqIgnoreCase(name, 'to') ? H.To : H.Other;
    case 0x63:
      if (len === 7) {
        if (eqIgnoreCase(name, 'call-id')) return H.CallId;
        if (eqIgnoreCase(name, 'contact')) return H.Contact;
      } else if (len === 4) {
        if (eqIgnoreCase(name, 'cseq')) return H.CSeq;
      } else if (len === 14 && eqIgnoreCase(name, 'content-length')) return H.ContentLength;
      return H.Other;
    case 0x6d:
      return len === 12 && eqIgnoreCase(name, 'max-forwards') ? H.MaxForwards : H.Other;
    case 0x72:
      if (len === 5 && eqIgnoreCase(name, 'route')) return H.Route;
      if (len === 12 && eqIgnoreCase(name, 'record-route')) return H.RecordRoute;
      return H.Other;
    default:
      return H.Other;
  }
}

/** SIP-Version: "SIP" "/" 1*DIGIT "." 1*DIGIT (case-insensitive literal). 1 = 2.0, 0 = other valid, -1 = malformed. */
function checkVersion(s: string, a: number, b: number): number {
  if (b - a < 7) return -1;
  if (
    (s.charCodeAt(a) | 0x20) !== 0x73 ||
    (s.charCodeAt(a + 1) | 0x20) !== 0x69 ||
    (s.charCodeAt(a + 2) | 0x20) !== 0x70
  )
    return -1;
  if (s.charCodeAt(a + 3) !== 47) return -1;
  const d1 = scan(s, a + 4, b, C_DIGIT);
  if (d1 === a + 4 || d1 >= b || s.charCodeAt(d1) !== 46) return -1;
  const d2 = scan(s, d1 + 1, b, C_DIGIT);
  if (d2 === d1 + 1 || d2 !== b) return -1;
  return b - a === 7 && s.charCodeAt(a + 4) === 50 && s.charCodeAt(a + 6) === 48 ? 1 : 0;
}

/** Header fields a message may carry; real traffic has a few dozen, a flood of thousands only costs memory. */
export const MAX_HEADERS = 256;

const HEADER_NAMES: Record<number, string> = {
  [H.Via]: 'Via',
  [H.From]: 'From',
  [H.To]: 'To',
  [H.CallId]: 'Call-ID',
  [H.CSeq]: 'CSeq',
  [H.MaxForwards]: 'Max-Forwards',
  [H.ContentLength]: 'Content-Length',
  [H.Contact]: 'Contact',
  [H.Route]: 'Route',
  [H.RecordRoute]: 'Record-Route',
};

/**
 * End of the line starting at p: index of its CRLF, or n for the last line. Only CRLF line
 * ends are allowed: -1 for a bare CR, -2 for a bare LF.
 */
function lineEnd(str: string, p: number, n: number): number {
  const lf = str.indexOf('\n', p);
  const cr = str.indexOf('\r', p);
  if (lf < 0) return cr < 0 ? n : -1;
  if (cr === lf - 1) return cr;
  return cr >= 0 && cr < lf ? -1 : -2;
}

/**
 * Parses one SIP message from a datagram (default) or from a frame cut by SipStreamFramer
 * (`{stream: true}`). Never throws. Requests failing validation yield `{ok:false, status}`
 * (400, or 505 for an unsupported SIP version); malformed responses yield `drop: true`.
 */
export function parseMessage(buf: Buffer, opts?: ParseOptions): ParseResult {
  try {
    return parseInner(buf, opts?.stream === true, opts?.maxHeaders ?? MAX_HEADERS);
  } catch {
    // Defensive only: no known input reaches this (the fuzz test asserts it never happens).
    return { ok: false, status: 400, reason: INTERNAL_ERROR, drop: true };
  }
}

function parseInner(input: Buffer, stream: boolean, maxHeaders: number): ParseResult {
  // Accept any Uint8Array (Buffer methods are needed below).
  const buf = Buffer.isBuffer(input)
    ? input
    : Buffer.from((input as Uint8Array).buffer, (input as Uint8Array).byteOffset, (input as Uint8Array).byteLength);
  const len = buf.length;
  let start = 0;
  // RFC 3261 §7.5: ignore CRLFs preceding the start-line.
  while (start + 1 < len && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  if (start >= len) return { ok: false, status: 400, reason: 'Empty message', drop: true };
  const isResponse =
    len - start > 4 &&
    (buf[start]! | 0x20) === 0x73 &&
    (buf[start + 1]! | 0x20) === 0x69 &&
    (buf[start + 2]! | 0x20) === 0x70 &&
    buf[start + 3] === 0x2f;
  let partial: SipRequest | undefined;
  // Requests are answered (status) unless no response could be routed back: without the
  // header lines or without any Via line, `drop` is set too.
  const fail = (status: number, reason: string): ParseFailure => {
    if (isResponse) return { ok: false, status: 400, reason, drop: true };
    if (partial === undefined) return { ok: false, status, reason, drop: true };
    for (const h of partial.headers) if (nameIs(h.name, 'via')) return { ok: false, status, reason, partial };
    return { ok: false, status, reason, drop: true, partial };
  };

  let headEnd = buf.indexOf(CRLFCRLF, start);
  const terminated = headEnd >= 0;
  if (!terminated) headEnd = len;
  const head = buf.subarray(start, headEnd);
  if (!isUtf8(head)) return fail(400, 'Header section is not valid UTF-8');
  let str = head.toString('utf8');
  if (!terminated && str.endsWith('\r\n')) str = str.slice(0, -2);
  const n = str.length;
  // ---- start line
  const e1 = lineEnd(str, 0, n);
  if (e1 < 0) return fail(400, e1 === -1 ? 'Bare CR in header section' : 'Bare LF in header section');
  let req: SipRequest | undefined;
  let res: SipResponse | undefined;
  let lineErr: string | null = null;
  let lineStatus = 400;
  if (isResponse) {
    const sp1 = str.indexOf(' ', 0);
    if (sp1 < 0 || sp1 > e1) return fail(400, 'Malformed Status-Line');
    const v = checkVersion(str, 0, sp1);
    if (v < 0) return fail(400, 'Malformed SIP-Version');
    if (v === 0) return fail(505, 'Version Not Supported');
    if (sp1 + 4 > e1 || str.charCodeAt(sp1 + 4) !== SP) return fail(400, 'Malformed Status-Code');
    const st = scan(str, sp1 + 1, sp1 + 4, C_DIGIT);
    if (st !== sp1 + 4) return fail(400, 'Malformed Status-Code');
    const status =
      (str.charCodeAt(sp1 + 1) - 48) * 100 + (str.charCodeAt(sp1 + 2) - 48) * 10 + (str.charCodeAt(sp1 + 3) - 48);
    if (status < 100 || status > 699) return fail(400, 'Status-Code out of range');
    for (let k = sp1 + 5; k < e1; k++) {
      const c = str.charCodeAt(k);
      if ((c < 32 && c !== HTAB) || c === 0x7f) return fail(400, 'Control character in Reason-Phrase');
    }
    res = {
      type: 'response',
      version: str.slice(0, sp1),
      status,
      reason: str.slice(sp1 + 5, e1),
      headers: [],
      body: EMPTY,
    };
  } else {
    // A bad Request-Line is reported after the header lines are split, so that the
    // failure carries `partial` (needed to answer 505 / 400 with the right Via etc.).
    let method: string;
    let uri = '';
    let version = '';
    const m = scan(str, 0, e1, C_TOKEN);
    const sp2 = m < e1 ? str.indexOf(' ', m + 1) : -1;
    if (m === 0 || m >= e1 || str.charCodeAt(m) !== SP || sp2 < 0 || sp2 >= e1) {
      lineErr = 'Malformed Request-Line';
      const fsp = str.indexOf(' ');
      method = str.slice(0, fsp >= 0 && fsp < e1 ? fsp : e1);
    } else {
      method = str.slice(0, m);
      uri = str.slice(m + 1, sp2);
      version = str.slice(sp2 + 1, e1);
      const sp3 = str.indexOf(' ', sp2 + 1);
      if (sp2 === m + 1) lineErr = 'Malformed Request-Line: multiple SP';
      else if (sp3 >= 0 && sp3 < e1) {
        const trailing = trimWs(version).indexOf(' ') < 0 && checkVersion(str, sp2 + 1, sp3) >= 0;
        lineErr = trailing
          ? 'Malformed Request-Line: trailing whitespace'
          : 'Malformed Request-Line: LWS in Request-URI';
      } else {
        const v = checkVersion(str, sp2 + 1, e1);
        if (v < 0) lineErr = 'Malformed SIP-Version';
        else if (v === 0) {
          lineErr = 'Version Not Supported';
          lineStatus = 505;
        }
      }
    }
    req = { type: 'request', version, method, uri, headers: [], body: EMPTY };
  }
  const msg = (req ?? res)!;
  const headers: SipHeader[] = msg.headers;

  // ---- header lines (with unfolding, RFC 3261 §7.3.1)
  let p = e1 + 2;
  while (p < n) {
    const e = lineEnd(str, p, n);
    if (e < 0) return fail(400, e === -1 ? 'Bare CR in header section' : 'Bare LF in header section');
    const c = str.charCodeAt(p);
    if (c === SP || c === HTAB) {
      const last = headers[headers.length - 1];
      if (last === undefined) return fail(400, 'Continuation line before the first header');
      const cont = trimWs(str.slice(p, e));
      if (cont.length) last.value = last.value.length ? last.value + ' ' + cont : cont;
    } else {
      const ne = scan(str, p, e, C_TOKEN);
      if (ne === p) return fail(400, 'Malformed header name');
      let q = skipWs(str, ne, e);
      if (q >= e || str.charCodeAt(q) !== 58) return fail(400, 'Malformed header line');
      q = skipWs(str, q + 1, e);
      let ve = e;
      while (ve > q && isWs(str.charCodeAt(ve - 1))) ve--;
      if (headers.length >= maxHeaders) {
        if (req) partial = req; // answerable: the first fields (Via, …) are kept
        return fail(400, `Too many header fields (at most ${maxHeaders})`);
      }
      headers.push({ name: str.slice(p, ne), value: str.slice(q, ve) });
    }
    p = e + 2;
  }
  if (req) partial = req;
  if (lineErr !== null) return fail(lineStatus, lineErr);

  // ---- Request-URI
  if (req) {
    const ruri = parseUri(req.uri);
    if (ruri === null) return fail(400, 'Malformed Request-URI');
    // Strict: RFC 3261 §19.1.1 forbids URI headers in a Request-URI (RFC 4475 §3.1.2.11).
    if (ruri.kind === 'sip' && ruri.headers.length > 0) return fail(400, 'Headers not allowed in Request-URI');
    req.ruri = ruri;
  }

  // ---- core headers
  const core: CoreHeaders = {
    via: [],
    from: null,
    to: null,
    callId: null,
    cseq: null,
    maxForwards: null,
    contentLength: null,
    contact: [],
    contactStar: false,
    route: [],
    recordRoute: [],
  };
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const kind = coreKind(h.name);
    if (kind === H.Other) continue;
    const v = h.value;
    switch (kind) {
      case H.Via: {
        const vias = parseVia(v);
        if (vias === null) return fail(400, 'Malformed Via header');
        for (const x of vias) core.via.push(x);
        break;
      }
      case H.From:
      case H.To: {
        const na = parseNameAddr(v);
        if (na === null) return fail(400, 'Malformed ' + HEADER_NAMES[kind] + ' header');
        if (kind === H.From) core.from ??= na;
        else core.to ??= na;
        break;
      }
      case H.CallId:
        if (!isValidCallId(v)) return fail(400, 'Malformed Call-ID header');
        core.callId ??= v;
        break;
      case H.CSeq: {
        const cs = parseCSeq(v);
        if (cs === null) return fail(400, 'Malformed CSeq header');
        core.cseq ??= cs;
        break;
      }
      case H.MaxForwards: {
        const mf = parseMaxForwards(v);
        if (mf < 0) return fail(400, 'Malformed Max-Forwards header');
        core.maxForwards ??= mf;
        break;
      }
      case H.ContentLength: {
        if (core.contentLength !== null) return fail(400, 'Multiple Content-Length headers');
        const cl = parseContentLength(v);
        if (cl < 0) return fail(400, 'Malformed Content-Length header');
        core.contentLength = cl;
        break;
      }
      case H.Contact: {
        if (v === '*') {
          core.contactStar = true;
          break;
        }
        const list = parseNameAddrList(v);
        if (list === null) return fail(400, 'Malformed Contact header');
        for (const x of list) core.contact.push(x);
        break;
      }
      case H.Route:
      case H.RecordRoute: {
        const list = parseNameAddrList(v, { requireAngle: true });
        if (list === null) return fail(400, 'Malformed ' + HEADER_NAMES[kind] + ' header');
        const dst = kind === H.Route ? core.route : core.recordRoute;
        for (const x of list) dst.push(x);
        break;
      }
    }
  }
  if (!terminated) return fail(400, 'Header section not terminated by an empty line');

  // ---- body
  const bodyStart = headEnd + 4;
  if (core.contentLength !== null) {
    if (bodyStart + core.contentLength > len) return fail(400, 'Content-Length larger than the received body');
    msg.body = buf.subarray(bodyStart, bodyStart + core.contentLength);
  } else if (stream) {
    return fail(400, 'Missing Content-Length on a stream transport');
  } else {
    msg.body = buf.subarray(bodyStart);
  }
  msg.core = core;
  return { ok: true, msg };
}
