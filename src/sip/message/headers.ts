// Header names (compact forms), lookup helpers, comma-list splitting and scalar header parsers.

import { C_DIGIT, C_TOKEN, C_WORD, eqIgnoreCase, isWs, scan, skipWs, trimWs } from './chars.js';
import type { CSeq, SipHeader, SipMessage } from './types.js';

/** Compact form (lower-case letter) → canonical long name. RFC 3261 §7.3.3 and extensions. */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'Accept-Contact', // RFC 3841
  b: 'Referred-By', // RFC 3892
  c: 'Content-Type',
  d: 'Request-Disposition', // RFC 3841
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact', // RFC 3841
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  n: 'Identity-Info', // RFC 4474
  o: 'Event', // RFC 6665
  r: 'Refer-To', // RFC 3515
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events', // RFC 6665
  v: 'Via',
  x: 'Session-Expires', // RFC 4028
  y: 'Identity', // RFC 8224
};

const CANONICAL: Record<string, string> = {};
for (const n of [
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Authentication-Info',
  'Authorization',
  'Call-ID',
  'Call-Info',
  'Contact',
  'Content-Disposition',
  'Content-Encoding',
  'Content-Language',
  'Content-Length',
  'Content-Type',
  'CSeq',
  'Date',
  'Error-Info',
  'Event',
  'Expires',
  'From',
  'Identity',
  'Identity-Info',
  'In-Reply-To',
  'Max-Forwards',
  'MIME-Version',
  'Min-Expires',
  'Min-SE',
  'Organization',
  'P-Asserted-Identity',
  'P-Preferred-Identity',
  'Path',
  'Priority',
  'Privacy',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'Proxy-Require',
  'RAck',
  'Reason',
  'Record-Route',
  'Refer-To',
  'Referred-By',
  'Reject-Contact',
  'Replaces',
  'Reply-To',
  'Request-Disposition',
  'Require',
  'Retry-After',
  'Route',
  'RSeq',
  'Server',
  'Service-Route',
  'Session-Expires',
  'Subject',
  'Subscription-State',
  'Supported',
  'Timestamp',
  'To',
  'Unsupported',
  'User-Agent',
  'Via',
  'Warning',
  'WWW-Authenticate',
]) {
  CANONICAL[n.toLowerCase()] = n;
}

/** Normalized lookup key: lower-case long name (compact forms expanded). */
export function headerKey(name: string): string {
  if (name.length === 1) {
    const long = COMPACT_FORMS[name.toLowerCase()];
    if (long !== undefined) return long.toLowerCase();
  }
  return name.toLowerCase();
}

/** Canonical spelling of a header name (`cseq` → `CSeq`, `v` → `Via`); unknown names are returned as given. */
export function canonicalName(name: string): string {
  return CANONICAL[headerKey(name)] ?? name;
}

/** True when header name `name` (as received, maybe compact) denotes `key` (a lower-case long name). */
export function nameIs(name: string, key: string): boolean {
  if (name.length === 1) {
    const long = COMPACT_FORMS[name.toLowerCase()];
    return long !== undefined && long.length === key.length && eqIgnoreCase(long, key);
  }
  return name.length === key.length && eqIgnoreCase(name, key);
}

/** First value of a header (any form), or undefined. */
export function getHeader(msg: { headers: readonly SipHeader[] }, name: string): string | undefined {
  const key = headerKey(name);
  for (const h of msg.headers) if (nameIs(h.name, key)) return h.value;
  return undefined;
}

/** Values of all header lines with that name, in order (not split at commas). */
export function getHeaders(msg: { headers: readonly SipHeader[] }, name: string): string[] {
  const key = headerKey(name);
  const out: string[] = [];
  for (const h of msg.headers) if (nameIs(h.name, key)) out.push(h.value);
  return out;
}

export function countHeaders(msg: { headers: readonly SipHeader[] }, name: string): number {
  const key = headerKey(name);
  let n = 0;
  for (const h of msg.headers) if (nameIs(h.name, key)) n++;
  return n;
}

/** Headers whose values hold commas that do not separate values (never split). */
const NOT_LISTS = new Set([
  'www-authenticate',
  'authorization',
  'proxy-authenticate',
  'proxy-authorization',
  'authentication-info',
  'date',
  'call-id',
  'cseq',
  'from',
  'to',
  'content-length',
  'content-type',
  'max-forwards',
  'expires',
  'min-expires',
  'subject',
  'user-agent',
  'server',
  'organization',
  'retry-after',
  'timestamp',
  'priority',
  'mime-version',
  'refer-to',
  'referred-by',
  'identity',
  'identity-info',
  'event',
  'session-expires',
  'min-se',
  'content-disposition',
  'replaces',
  'subscription-state',
  'rseq',
  'rack',
  'reply-to',
]);

/** True when the header (by name) is a comma-separated list header. */
export function isListHeader(name: string): boolean {
  return !NOT_LISTS.has(headerKey(name));
}

/**
 * Splits a header value at commas that are outside quoted strings and `<...>`; parts are
 * trimmed; empty parts are kept (so callers can detect `a,,b`).
 */
export function splitHeaderValue(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92 /* \ */) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) inAngle = true;
    else if (c === 62) inAngle = false;
    else if (c === 44 && !inAngle) {
      out.push(trimWs(value.slice(start, i)));
      start = i + 1;
    }
  }
  out.push(trimWs(value.slice(start)));
  return out;
}

/** All values of a header; list headers are split at commas (see splitHeaderValue). */
export function getHeaderValues(msg: { headers: readonly SipHeader[] }, name: string): string[] {
  const list = isListHeader(name);
  const out: string[] = [];
  for (const v of getHeaders(msg, name)) {
    if (list) {
      for (const part of splitHeaderValue(v)) if (part.length) out.push(part);
    } else out.push(v);
  }
  return out;
}

export function hasHeader(msg: { headers: readonly SipHeader[] }, name: string): boolean {
  return getHeader(msg, name) !== undefined;
}

/** Appends a header line. */
export function addHeader(msg: SipMessage, name: string, value: string): void {
  msg.headers.push({ name, value });
}

/** Removes all lines with that name (any form); returns how many were removed. */
export function removeHeaders(msg: SipMessage, name: string): number {
  const key = headerKey(name);
  const before = msg.headers.length;
  msg.headers = msg.headers.filter((h) => !nameIs(h.name, key));
  return before - msg.headers.length;
}

/** Replaces the first line with that name (keeping its position) and removes the others; appends if absent. */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const key = headerKey(name);
  let done = false;
  const out: SipHeader[] = [];
  for (const h of msg.headers) {
    if (nameIs(h.name, key)) {
      if (!done) {
        out.push({ name, value });
        done = true;
      }
    } else out.push(h);
  }
  if (!done) out.push({ name, value });
  msg.headers = out;
}

/** Parses `1*DIGIT` into a number, rejecting values above max. Leading zeros allowed. -1 when invalid. */
export function parseDigits(s: string, a: number, b: number, max: number): number {
  if (b <= a) return -1;
  while (a < b - 1 && s.charCodeAt(a) === 48) a++;
  if (b - a > 16) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v > max ? -1 : v;
}

/** CSeq: `1*DIGIT LWS Method`, number ≤ 2^32-1. Null when malformed. */
export function parseCSeq(value: string): CSeq | null {
  const end = value.length;
  const d = scan(value, 0, end, C_DIGIT);
  const seq = parseDigits(value, 0, d, 0xffffffff);
  if (seq < 0) return null;
  const m = skipWs(value, d, end);
  if (m === d) return null;
  const me = scan(value, m, end, C_TOKEN);
  if (me === m || me !== end) return null;
  return { seq, method: value.slice(m, me) };
}

/** Content-Length: 1*DIGIT (≤ 2^31-1). -1 when malformed (negative, non-numeric, list, ...). */
export function parseContentLength(value: string): number {
  return parseDigits(value, 0, value.length, 0x7fffffff);
}

/** Max-Forwards: 1*DIGIT, 0..255. -1 when malformed. */
export function parseMaxForwards(value: string): number {
  return parseDigits(value, 0, value.length, 255);
}

/** Expires / delta-seconds: 1*DIGIT; values above 2^32-1 are malformed (-1). */
export function parseDeltaSeconds(value: string): number {
  return parseDigits(value, 0, value.length, 0xffffffff);
}

/** Call-ID: word [ "@" word ]. */
export function isValidCallId(value: string): boolean {
  const end = value.length;
  const a = scan(value, 0, end, C_WORD);
  if (a === 0) return false;
  if (a === end) return true;
  if (value.charCodeAt(a) !== 64 /* @ */) return false;
  const b = scan(value, a + 1, end, C_WORD);
  return b > a + 1 && b === end;
}

/** Splits a comma-separated list of tokens (Require, Supported, Allow, ...). Null if any element is not a token. */
export function parseTokenList(value: string): string[] | null {
  const out: string[] = [];
  const end = value.length;
  let p = skipWs(value, 0, end);
  if (p >= end) return out;
  for (;;) {
    const a = p;
    p = scan(value, p, end, C_TOKEN);
    if (p === a) return null;
    out.push(value.slice(a, p));
    p = skipWs(value, p, end);
    if (p >= end) return out;
    if (value.charCodeAt(p) !== 44) return null;
    p = skipWs(value, p + 1, end);
  }
}

/** Media type of a Content-Type / Accept element, lower-cased, without params (`application/sdp`). */
export function mediaType(value: string): string {
  let e = value.indexOf(';');
  if (e < 0) e = value.length;
  let out = '';
  for (let i = 0; i < e; i++) {
    const c = value.charCodeAt(i);
    if (!isWs(c)) out += value[i];
  }
  return out.toLowerCase();
}
