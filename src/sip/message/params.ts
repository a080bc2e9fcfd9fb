// Quoted strings and generic `;name=value` parameter lists.

import { C_GENVAL, C_TOKEN, scan, skipWs } from './chars.js';
import type { Param } from './types.js';

/**
 * Scans a quoted-string starting at s[p] === '"'. Returns the index just after the
 * closing quote, or -1 when unterminated or holding a raw control character.
 */
export function scanQuoted(s: string, p: number, end: number): number {
  p++;
  while (p < end) {
    const c = s.charCodeAt(p);
    if (c === 34 /* " */) return p + 1;
    if (c === 92 /* \ */) {
      if (p + 1 >= end) return -1;
      const n = s.charCodeAt(p + 1);
      if (n === 10 || n === 13 || n > 0x7f) return -1;
      p += 2;
      continue;
    }
    if ((c < 32 && c !== 9) || c === 0x7f) return -1;
    p++;
  }
  return -1;
}

/** Removes the quotes of a quoted-string and resolves quoted-pairs. */
export function unquote(q: string): string {
  if (q.length < 2 || q.charCodeAt(0) !== 34) return q;
  const inner = q.slice(1, -1);
  if (inner.indexOf('\\') < 0) return inner;
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '\\' && i + 1 < inner.length) {
      out += inner[i + 1];
      i++;
    } else out += c;
  }
  return out;
}

/** Quotes a string for use as a quoted-string (escapes `"` and `\`). */
export function quote(s: string): string {
  let out = '"';
  for (const ch of s) out += ch === '"' || ch === '\\' ? '\\' + ch : ch;
  return out + '"';
}

/**
 * Parses `*( SEMI generic-param )` from s[p..end). Returns the position after the last
 * parameter (trailing SP/HTAB skipped), or -1 on a malformed parameter (empty name,
 * empty value after '=', bad quoted string).
 */
export function parseParams(s: string, p: number, end: number, out: Param[]): number {
  for (;;) {
    p = skipWs(s, p, end);
    if (p >= end || s.charCodeAt(p) !== 59 /* ; */) return p;
    p = skipWs(s, p + 1, end);
    const ns = p;
    p = scan(s, p, end, C_TOKEN);
    if (p === ns) return -1;
    const name = s.slice(ns, p);
    p = skipWs(s, p, end);
    if (p < end && s.charCodeAt(p) === 61 /* = */) {
      p = skipWs(s, p + 1, end);
      const vs = p;
      if (p < end && s.charCodeAt(p) === 34) {
        p = scanQuoted(s, p, end);
        if (p < 0) return -1;
      } else {
        p = scan(s, p, end, C_GENVAL);
        if (p === vs) return -1;
      }
      out.push({ name, value: s.slice(vs, p) });
    } else {
      out.push({ name, value: null });
    }
  }
}

/** Finds a parameter by name (case-insensitive). undefined: absent; null: present without value. */
export function getParam(params: readonly Param[], name: string): string | null | undefined {
  const lname = name.toLowerCase();
  for (const p of params) if (p.name.length === lname.length && p.name.toLowerCase() === lname) return p.value;
  return undefined;
}

export function hasParam(params: readonly Param[], name: string): boolean {
  return getParam(params, name) !== undefined;
}

export function formatParams(params: readonly Param[]): string {
  let out = '';
  for (const p of params) out += p.value === null ? ';' + p.name : ';' + p.name + '=' + p.value;
  return out;
}
