// Via header parser (RFC 3261 §20.42, §25.1; RFC 3581 rport; RFC 5118 §4.5 received).

import { C_DIGIT, C_HOST, C_TOKEN, eqIgnoreCase, is, scan, skipWs } from './chars.js';
import { parseParams } from './params.js';
import type { Param, Via } from './types.js';
import { hostType, isIPv4, isIPv6, parsePort } from './uri.js';

/** Lower-cased name of a Via param this parser validates, or '' (no allocation for other names). */
function paramKind(name: string): string {
  switch (name.length) {
    case 6:
      return eqIgnoreCase(name, 'branch') ? 'branch' : '';
    case 8:
      return eqIgnoreCase(name, 'received') ? 'received' : '';
    case 5:
      return eqIgnoreCase(name, 'rport') ? 'rport' : eqIgnoreCase(name, 'maddr') ? 'maddr' : '';
    case 3:
      return eqIgnoreCase(name, 'ttl') ? 'ttl' : '';
    default:
      return '';
  }
}

function parseOneVia(s: string, p: number, end: number): { via: Via; end: number } | null {
  p = skipWs(s, p, end);
  const a = p;
  p = scan(s, p, end, C_TOKEN);
  if (p === a) return null;
  const protocol = s.slice(a, p);
  p = skipWs(s, p, end);
  if (s.charCodeAt(p) !== 47 /* / */) return null;
  p = skipWs(s, p + 1, end);
  const b = p;
  p = scan(s, p, end, C_TOKEN);
  if (p === b) return null;
  const version = s.slice(b, p);
  p = skipWs(s, p, end);
  if (s.charCodeAt(p) !== 47) return null;
  p = skipWs(s, p + 1, end);
  const t = p;
  p = scan(s, p, end, C_TOKEN);
  if (p === t) return null;
  const transport = s.slice(t, p).toUpperCase();
  const ws = p;
  p = skipWs(s, p, end);
  if (p === ws) return null; // LWS required before sent-by
  const hs = p;
  if (s.charCodeAt(p) === 91 /* [ */) {
    const close = s.indexOf(']', p);
    if (close < 0 || close >= end) return null;
    p = close + 1;
  } else {
    p = scan(s, p, end, C_HOST);
  }
  if (hostType(s, hs, p) === null) return null;
  const host = s.slice(hs, p);
  let port: number | null = null;
  let q = skipWs(s, p, end);
  if (q < end && s.charCodeAt(q) === 58 /* : */) {
    q = skipWs(s, q + 1, end);
    const ps = q;
    q = scan(s, q, end, C_DIGIT);
    const v = parsePort(s, ps, q);
    if (v < 0) return null;
    port = v;
    p = q;
  }
  const params: Param[] = [];
  p = parseParams(s, p, end, params);
  if (p < 0) return null;
  let branch: string | null = null;
  let received: string | null = null;
  let rport: number | true | undefined;
  for (let i = 0; i < params.length; i++) {
    const prm = params[i]!;
    const n = paramKind(prm.name);
    if (n === '') continue;
    const v = prm.value;
    if (n === 'branch') {
      if (v === null || !is(v.charCodeAt(0), C_TOKEN) || scan(v, 0, v.length, C_TOKEN) !== v.length) return null;
      branch = v;
    } else if (n === 'received') {
      // IPv4address / IPv6address; the bracketed form is accepted too (RFC 5118 §4.5).
      if (v === null) return null;
      const ok =
        isIPv4(v) ||
        isIPv6(v) ||
        (v.length > 2 && v.charCodeAt(0) === 91 && v.charCodeAt(v.length - 1) === 93 && isIPv6(v, 1, v.length - 1));
      if (!ok) return null;
      received = v;
    } else if (n === 'rport') {
      if (v === null) rport = true;
      else {
        const r = parsePort(v, 0, v.length);
        if (r < 0) return null;
        rport = r;
      }
    } else if (n === 'ttl') {
      if (v === null || v.length > 3 || scan(v, 0, v.length, C_DIGIT) !== v.length || Number(v) > 255) return null;
    } else if (n === 'maddr') {
      if (v === null || hostType(v) === null) return null;
    }
  }
  return { via: { protocol, version, transport, host, port, params, branch, received, rport }, end: p };
}

/** Parses a Via header value (one or more comma-separated via-parms). Null when malformed. */
export function parseVia(s: string): Via[] | null {
  const out: Via[] = [];
  let p = 0;
  const end = s.length;
  for (;;) {
    const r = parseOneVia(s, p, end);
    if (r === null) return null;
    out.push(r.via);
    p = skipWs(s, r.end, end);
    if (p >= end) return out;
    if (s.charCodeAt(p) !== 44 /* , */) return null;
    p++;
  }
}

/** Formats one Via value. */
export function formatVia(v: Via): string {
  let out = v.protocol + '/' + v.version + '/' + v.transport + ' ' + v.host;
  if (v.port !== null) out += ':' + v.port;
  for (const p of v.params) out += p.value === null ? ';' + p.name : ';' + p.name + '=' + p.value;
  return out;
}
