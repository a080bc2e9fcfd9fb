// name-addr / addr-spec with header params (RFC 3261 §20.10, §20.20, §20.39, §25.1).

import { C_TOKEN, scan, skipWs } from './chars.js';
import { parseParams, scanQuoted, unquote } from './params.js';
import type { NameAddr, Param } from './types.js';
import { parseUri } from './uri.js';

export interface NameAddrOptions {
  /** Require the `<...>` form (Route, Record-Route). */
  requireAngle?: boolean;
}

/**
 * Parses one name-addr or addr-spec (plus header params) starting at s[p]. Returns the
 * value and the position after it (trailing SP/HTAB skipped), or null when malformed.
 * Strict: no LWS inside `<...>`; addr-spec form may not hold `?`; display names must be
 * a quoted-string or tokens separated by LWS.
 */
export function parseNameAddrAt(
  s: string,
  p: number,
  end: number,
  opts?: NameAddrOptions,
): { value: NameAddr; end: number } | null {
  p = skipWs(s, p, end);
  if (p >= end) return null;
  let displayNameRaw: string | null = null;
  let displayName: string | null = null;
  let c = s.charCodeAt(p);
  if (c === 34 /* " */) {
    const q = scanQuoted(s, p, end);
    if (q < 0) return null;
    displayNameRaw = s.slice(p, q);
    displayName = unquote(displayNameRaw);
    p = skipWs(s, q, end);
    if (p >= end || s.charCodeAt(p) !== 60 /* < */) return null;
  } else if (c !== 60) {
    // Either display-name tokens followed by '<', or an addr-spec.
    let q = p;
    let lastEnd = -1;
    for (;;) {
      const t = scan(s, q, end, C_TOKEN);
      if (t === q) break;
      lastEnd = t;
      q = skipWs(s, t, end);
      if (q >= end) break;
    }
    if (lastEnd > 0 && q < end && s.charCodeAt(q) === 60) {
      displayNameRaw = s.slice(p, lastEnd);
      displayName = displayNameRaw;
      p = q;
    }
  }
  c = s.charCodeAt(p);
  const params: Param[] = [];
  let uriStart: number;
  let uriEnd: number;
  let angle: boolean;
  if (c === 60) {
    angle = true;
    uriStart = p + 1;
    // parseUri rejects SP/HTAB/'<'/'"'/controls inside, so LWS in <...> (badaspec) fails there.
    const i = s.indexOf('>', uriStart);
    if (i < 0 || i >= end) return null;
    uriEnd = i;
    p = i + 1;
  } else {
    if (opts?.requireAngle) return null;
    angle = false;
    uriStart = p;
    let i = p;
    for (; i < end; i++) {
      const ch = s.charCodeAt(i);
      if (ch === 59 || ch === 44 || ch === 32 || ch === 9) break;
      if (ch === 63 /* ? */ || ch === 60 || ch === 62 || ch === 34 || ch < 32 || ch === 0x7f) return null;
    }
    uriEnd = i;
    p = i;
  }
  const uri = parseUri(s, uriStart, uriEnd);
  if (uri === null) return null;
  p = parseParams(s, p, end, params);
  if (p < 0) return null;
  let tag: string | null = null;
  for (const prm of params) {
    if (prm.name.length === 3 && prm.name.toLowerCase() === 'tag') {
      if (prm.value === null || scan(prm.value, 0, prm.value.length, C_TOKEN) !== prm.value.length) return null;
      tag = prm.value;
      break;
    }
  }
  return { value: { displayName, displayNameRaw, angle, uri, params, tag }, end: p };
}

/** Parses a header value holding exactly one name-addr/addr-spec (From, To, Refer-To, ...). */
export function parseNameAddr(s: string, opts?: NameAddrOptions): NameAddr | null {
  const r = parseNameAddrAt(s, 0, s.length, opts);
  if (r === null || r.end !== s.length) return null;
  return r.value;
}

/** Parses a comma-separated list of name-addr/addr-spec (Contact, Route, Record-Route, ...). */
export function parseNameAddrList(s: string, opts?: NameAddrOptions): NameAddr[] | null {
  const out: NameAddr[] = [];
  let p = 0;
  const end = s.length;
  for (;;) {
    const r = parseNameAddrAt(s, p, end, opts);
    if (r === null) return null;
    out.push(r.value);
    p = r.end;
    if (p >= end) return out;
    if (s.charCodeAt(p) !== 44 /* , */) return null;
    p++;
  }
}

/** Formats a name-addr (always the `<...>` form, display name re-emitted raw). */
export function formatNameAddr(na: NameAddr): string {
  let out = na.displayNameRaw !== null ? na.displayNameRaw + ' ' : '';
  out += '<' + na.uri.raw + '>';
  for (const p of na.params) out += p.value === null ? ';' + p.name : ';' + p.name + '=' + p.value;
  return out;
}
