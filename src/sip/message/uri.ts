// URI parser: sip/sips (RFC 3261 §19.1, §25.1), tel (RFC 3966) and any other absoluteURI.
// Escapes are validated but kept raw.

import {
  C_ALNUM,
  C_DIGIT,
  C_HEX,
  C_HNV,
  C_HOST,
  C_PARAM,
  C_PASSWORD,
  C_URIC,
  C_USER,
  eqIgnoreCase,
  is,
  isEscapedRun,
  unescapePercent,
} from './chars.js';
import type { Param, SipUri, TelUri, Uri } from './types.js';
import { formatParams } from './params.js';

/** Validates a dotted-quad IPv4 address in s[a..b). */
export function isIPv4(s: string, a = 0, b = s.length): boolean {
  let parts = 0;
  let i = a;
  while (i <= b) {
    const st = i;
    let v = 0;
    while (i < b && is(s.charCodeAt(i), C_DIGIT)) {
      v = v * 10 + (s.charCodeAt(i) - 48);
      i++;
      if (i - st > 3) return false;
    }
    if (i === st || v > 255) return false;
    parts++;
    if (i === b) break;
    if (s.charCodeAt(i) !== 46 /* . */ || parts === 4) return false;
    i++;
  }
  return parts === 4;
}

/**
 * Validates an IPv6 address (RFC 4291 §2.2 text forms, including an embedded IPv4 tail)
 * in s[a..b), without brackets. Strict: `2001:db8:::1` (three colons) is rejected (RFC 5954).
 */
export function isIPv6(s: string, a = 0, b = s.length): boolean {
  if (b - a < 2) return false;
  let groups = 0;
  let dbl = false;
  let i = a;
  if (s.charCodeAt(i) === 58) {
    if (s.charCodeAt(i + 1) !== 58) return false;
    dbl = true;
    i += 2;
    if (i === b) return true; // "::"
  }
  for (;;) {
    const st = i;
    while (i < b && is(s.charCodeAt(i), C_HEX)) i++;
    const len = i - st;
    if (i < b && s.charCodeAt(i) === 46 /* . */) {
      // IPv4 tail
      if (!isIPv4(s, st, b)) return false;
      groups += 2;
      break;
    }
    if (len === 0 || len > 4) return false;
    groups++;
    if (i === b) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < b && s.charCodeAt(i) === 58) {
      if (dbl) return false;
      dbl = true;
      i++;
      if (i === b) break;
      if (s.charCodeAt(i) === 58) return false; // ":::"
    } else if (i === b) return false; // trailing single colon
  }
  return dbl ? groups < 8 : groups === 8;
}

/** Validates an RFC 3261 hostname (labels of alphanum and '-', top label starting with a letter). */
export function isHostname(s: string, a = 0, b = s.length): boolean {
  if (b <= a) return false;
  if (s.charCodeAt(b - 1) === 46) b--; // trailing dot allowed
  let labelStart = a;
  for (let i = a; i <= b; i++) {
    const c = i < b ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (i === labelStart) return false;
      if (s.charCodeAt(labelStart) === 45 || s.charCodeAt(i - 1) === 45) return false;
      if (i === b) {
        const f = s.charCodeAt(labelStart);
        if (!((f >= 65 && f <= 90) || (f >= 97 && f <= 122))) return false; // toplabel starts with ALPHA
      }
      labelStart = i + 1;
    } else if (!is(c, C_ALNUM) && c !== 45) return false;
  }
  return true;
}

/** Classifies a host (hostname / IPv4 / bracketed IPv6 reference), or null if invalid. */
export function hostType(s: string, a = 0, b = s.length): 'name' | 'ipv4' | 'ipv6' | null {
  if (b <= a) return null;
  if (s.charCodeAt(a) === 91 /* [ */) {
    return s.charCodeAt(b - 1) === 93 && isIPv6(s, a + 1, b - 1) ? 'ipv6' : null;
  }
  let allNum = true;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (!(is(c, C_DIGIT) || c === 46)) {
      allNum = false;
      break;
    }
  }
  if (allNum) return isIPv4(s, a, b) ? 'ipv4' : null;
  return isHostname(s, a, b) ? 'name' : null;
}

/** Parses a port (1*DIGIT, 0..65535). Returns -1 when invalid. */
export function parsePort(s: string, a: number, b: number): number {
  if (b <= a || b - a > 5) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v > 65535 ? -1 : v;
}

/** Valid scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
function schemeEnd(s: string, a: number, b: number): number {
  const f = s.charCodeAt(a);
  if (!((f >= 65 && f <= 90) || (f >= 97 && f <= 122))) return -1;
  let i = a + 1;
  while (i < b) {
    const c = s.charCodeAt(i);
    if (c === 58 /* : */) return i;
    if (!(is(c, C_ALNUM) || c === 43 || c === 45 || c === 46)) return -1;
    i++;
  }
  return -1;
}

/** Parses `;name[=value]` URI params in s[p..b) with the given char class. Returns end or -1. */
function parseUriParams(s: string, p: number, b: number, out: Param[], stopAtQ: boolean): number {
  while (p < b && s.charCodeAt(p) === 59) {
    p++;
    const ns = p;
    let eq = -1;
    while (p < b) {
      const c = s.charCodeAt(p);
      if (c === 59 || (stopAtQ && c === 63)) break;
      if (c === 61 && eq < 0) eq = p;
      else if (!is(c, C_PARAM)) return -1;
      p++;
    }
    const ne = eq < 0 ? p : eq;
    if (ne === ns || !isEscapedRun(s, ns, ne, C_PARAM)) return -1;
    if (eq >= 0) {
      if (eq + 1 === p || !isEscapedRun(s, eq + 1, p, C_PARAM)) return -1;
      out.push({ name: s.slice(ns, ne), value: s.slice(eq + 1, p) });
    } else out.push({ name: s.slice(ns, ne), value: null });
  }
  return p;
}

function parseSipUri(s: string, scheme: 'sip' | 'sips', p: number, b: number, raw: string): SipUri | null {
  let user: string | null = null;
  let password: string | null = null;
  // '@' is not allowed unescaped anywhere after the userinfo, so the first '@' ends it.
  // (bounded scan: s may be a long header value holding many URIs)
  let at = -1;
  for (let i = p; i < b; i++) {
    if (s.charCodeAt(i) === 64) {
      at = i;
      break;
    }
  }
  if (at >= 0) {
    let colon = -1;
    for (let i = p; i < at; i++) {
      if (s.charCodeAt(i) === 58) {
        colon = i;
        break;
      }
    }
    const ue = colon < 0 ? at : colon;
    if (ue === p || !isEscapedRun(s, p, ue, C_USER)) return null;
    user = s.slice(p, ue);
    if (colon >= 0) {
      if (!isEscapedRun(s, colon + 1, at, C_PASSWORD)) return null;
      password = s.slice(colon + 1, at);
    }
    p = at + 1;
  }
  // hostport
  const hs = p;
  if (p < b && s.charCodeAt(p) === 91) {
    let close = p + 1;
    while (close < b && s.charCodeAt(close) !== 93) close++;
    if (close >= b) return null;
    p = close + 1;
  } else {
    while (p < b && is(s.charCodeAt(p), C_HOST)) p++;
  }
  const ht = hostType(s, hs, p);
  if (ht === null) return null;
  const host = s.slice(hs, p);
  let port: number | null = null;
  if (p < b && s.charCodeAt(p) === 58) {
    const ps = ++p;
    while (p < b && is(s.charCodeAt(p), C_DIGIT)) p++;
    const v = parsePort(s, ps, p);
    if (v < 0) return null;
    port = v;
  }
  const params: Param[] = [];
  p = parseUriParams(s, p, b, params, true);
  if (p < 0) return null;
  const headers: Param[] = [];
  if (p < b && s.charCodeAt(p) === 63 /* ? */) {
    for (;;) {
      p++;
      const ns = p;
      let eq = -1;
      while (p < b) {
        const c = s.charCodeAt(p);
        if (c === 38 /* & */) break;
        if (c === 61 && eq < 0) eq = p;
        else if (!is(c, C_HNV)) return null;
        p++;
      }
      if (eq < 0 || eq === ns) return null;
      if (!isEscapedRun(s, ns, eq, C_HNV) || !isEscapedRun(s, eq + 1, p, C_HNV)) return null;
      headers.push({ name: s.slice(ns, eq), value: s.slice(eq + 1, p) });
      if (p >= b) break;
    }
  }
  if (p !== b) return null;
  return { kind: 'sip', scheme, user, password, host, hostType: ht, port, params, headers, raw };
}

function parseTelUri(s: string, p: number, b: number, raw: string): TelUri | null {
  const ns = p;
  while (p < b) {
    const c = s.charCodeAt(p);
    if (c === 59) break;
    // global / local number digits, visual separators, '*', '#'
    if (!(is(c, C_HEX) || c === 43 || c === 45 || c === 46 || c === 40 || c === 41 || c === 42 || c === 35))
      return null;
    p++;
  }
  if (p === ns) return null;
  const ne = p;
  const params: Param[] = [];
  p = parseUriParams(s, p, b, params, false);
  if (p !== b) return null;
  return { kind: 'tel', scheme: 'tel', number: s.slice(ns, ne), params, raw };
}

/**
 * Parses an absolute URI. sip/sips/tel are decomposed; any other well-formed scheme yields
 * `kind: 'other'`. Returns null when malformed (including LWS or `<>` anywhere). Never throws.
 */
export function parseUri(s: string, a = 0, b = s.length): Uri | null {
  if (b <= a) return null;
  const colon = schemeEnd(s, a, b);
  if (colon < 0) return null;
  const raw = a === 0 && b === s.length ? s : s.slice(a, b);
  const p = colon + 1;
  const slen = colon - a;
  if (slen === 3 && eqIgnoreCase(s.slice(a, colon), 'sip')) return parseSipUri(s, 'sip', p, b, raw);
  if (slen === 4 && eqIgnoreCase(s.slice(a, colon), 'sips')) return parseSipUri(s, 'sips', p, b, raw);
  if (slen === 3 && eqIgnoreCase(s.slice(a, colon), 'tel')) return parseTelUri(s, p, b, raw);
  if (p >= b || !isEscapedRun(s, p, b, C_URIC)) return null;
  return { kind: 'other', scheme: s.slice(a, colon).toLowerCase(), opaque: s.slice(p, b), raw };
}

/** Formats a URI from its components (use `raw` to re-emit a parsed URI unchanged). */
export function formatUri(u: Uri): string {
  if (u.kind === 'other') return u.scheme + ':' + u.opaque;
  if (u.kind === 'tel') return 'tel:' + u.number + formatParams(u.params);
  let out = u.scheme + ':';
  if (u.user !== null) {
    out += u.user;
    if (u.password !== null) out += ':' + u.password;
    out += '@';
  }
  out += u.host;
  if (u.port !== null) out += ':' + u.port;
  out += formatParams(u.params);
  if (u.headers.length) out += '?' + u.headers.map((h) => h.name + '=' + (h.value ?? '')).join('&');
  return out;
}

/** Decodes %HH in a URI component, for comparison only (result is a byte string, latin1). */
export function unescapeUriComponent(s: string): string {
  return unescapePercent(s);
}

/**
 * SIP URI comparison (RFC 3261 §19.1.4, simplified): scheme, user and password compared
 * after unescaping (case-sensitive), host case-insensitive, ports must both be absent or equal,
 * and user/ttl/method/maddr/transport params must match when present in either.
 */
export function sipUriEquals(x: SipUri, y: SipUri): boolean {
  if (x.scheme !== y.scheme) return false;
  if ((x.user === null) !== (y.user === null)) return false;
  if (x.user !== null && y.user !== null && unescapePercent(x.user) !== unescapePercent(y.user)) return false;
  if (
    (x.password ?? '') !== (y.password ?? '') &&
    unescapePercent(x.password ?? '') !== unescapePercent(y.password ?? '')
  )
    return false;
  if (x.host.toLowerCase() !== y.host.toLowerCase()) return false;
  if (x.port !== y.port) return false;
  for (const name of ['user', 'ttl', 'method', 'maddr', 'transport']) {
    const a = x.params.find((p) => p.name.toLowerCase() === name);
    const b = y.params.find((p) => p.name.toLowerCase() === name);
    if ((a === undefined) !== (b === undefined)) return false;
    if (a && b && unescapePercent(a.value ?? '').toLowerCase() !== unescapePercent(b.value ?? '').toLowerCase())
      return false;
  }
  return true;
}
