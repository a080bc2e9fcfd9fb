// Semantic checks after a successful parse (RFC 3261 §8.2, §16.3; RFC 4475 §3.3).
// The strict option is taken wherever the RFCs allow a choice; see docs/sip.md.

import { countHeaders, getHeaderValues, getHeader, mediaType, parseTokenList } from './headers.js';
import { unescapePercent } from './chars.js';
import type { SipHeader, SipRequest, SipResponse } from './types.js';
import { isIPv4 } from './uri.js';

export type Role = 'uas' | 'proxy' | 'registrar';

export interface ValidateOptions {
  /** How the element handles the request. Default 'uas' (our B2BUA acts as a UAS towards each leg). */
  role?: Role;
  /** Methods the element implements (others → 501 with Allow). */
  allowedMethods?: readonly string[];
  /** Option tags the element supports (unknown Require / Proxy-Require → 420 with Unsupported). */
  supported?: readonly string[];
  /** Request-URI schemes handled (others → 416). Default sip, sips, tel. */
  schemes?: readonly string[];
  /** Body media types accepted (others → 415 with Accept). Default application/sdp. */
  acceptTypes?: readonly string[];
  /** Reject a branch that is exactly the magic cookie `z9hG4bK` (RFC 4475 §3.2.1). Default true. */
  rejectBareCookieBranch?: boolean;
}

export interface Rejection {
  status: number;
  reason: string;
  /** Headers to add to the error response (Allow, Unsupported, Accept). */
  headers: SipHeader[];
}

export const DEFAULT_METHODS: readonly string[] = [
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'REGISTER',
  'PRACK',
  'UPDATE',
  'INFO',
  'REFER',
  'NOTIFY',
  'SUBSCRIBE',
  'MESSAGE',
];

/** Methods known to the stack (for the 400-vs-501 decision on a CSeq mismatch). */
const KNOWN_METHODS = new Set([...DEFAULT_METHODS, 'PUBLISH']);

function reject(status: number, reason: string, headers: SipHeader[] = []): Rejection {
  return { status, reason, headers };
}

/**
 * Checks a parsed request. Returns null when it may be processed, or the error response to
 * send. Order follows RFC 3261 §8.2: message validity (400), method (501 unknown / 405 known but
 * not allowed), URI scheme (416),
 * Max-Forwards (483, proxy only), extensions (420), content (415/406), registrar rules (400).
 */
export function validateRequest(req: SipRequest, opts?: ValidateOptions): Rejection | null {
  const role = opts?.role ?? 'uas';
  const core = req.core;
  // -- mandatory headers (RFC 3261 §8.1.1; Max-Forwards may be missing in RFC 2543 requests)
  if (!core) return reject(400, 'Message not parsed');
  if (core.via.length === 0) return reject(400, 'Missing Via header');
  if (!core.from) return reject(400, 'Missing From header');
  if (!core.to) return reject(400, 'Missing To header');
  if (core.callId === null) return reject(400, 'Missing Call-ID header');
  if (!core.cseq) return reject(400, 'Missing CSeq header');
  // -- single-instance headers appearing more than once (RFC 4475 §3.3.8)
  for (const name of ['Call-ID', 'From', 'To', 'CSeq', 'Max-Forwards', 'Content-Length']) {
    if (countHeaders(req, name) > 1) return reject(400, 'Multiple ' + name + ' headers');
  }
  // -- CSeq method must equal the request method (RFC 4475 §3.1.2.17/18)
  const known = KNOWN_METHODS.has(req.method);
  if (core.cseq.method !== req.method) {
    return known ? reject(400, 'CSeq method does not match the request method') : methodNotAllowed(req, opts);
  }
  // -- Via branch exactly the magic cookie (strict: reject statelessly)
  if ((opts?.rejectBareCookieBranch ?? true) && core.via[0]!.branch === 'z9hG4bK') {
    return reject(400, 'Malformed branch parameter');
  }
  // -- Contact: * only in REGISTER, alone (RFC 3261 §10.2.2)
  if (core.contactStar && (req.method !== 'REGISTER' || core.contact.length > 0))
    return reject(400, 'Invalid Contact: *');
  // -- method (RFC 3261 §8.2.1)
  const allowed = opts?.allowedMethods ?? DEFAULT_METHODS;
  if (!allowed.includes(req.method)) {
    if (!known) return methodNotAllowed(req, opts);
    return reject(405, 'Method Not Allowed', [{ name: 'Allow', value: allowed.join(', ') }]);
  }
  // -- Request-URI scheme (RFC 3261 §8.2.2.1)
  const schemes = opts?.schemes ?? ['sip', 'sips', 'tel'];
  if (!req.ruri || !schemes.includes(req.ruri.scheme)) return reject(416, 'Unsupported URI Scheme');
  // -- Max-Forwards (RFC 3261 §16.3 step 3): a proxy must not forward with 0 (OPTIONS may be answered)
  if (role === 'proxy' && core.maxForwards === 0 && req.method !== 'OPTIONS') return reject(483, 'Too Many Hops');
  // -- Require / Proxy-Require (RFC 3261 §8.2.2.3, §16.3 step 5); not for CANCEL / ACK
  if (req.method !== 'CANCEL' && req.method !== 'ACK') {
    const supported = new Set((opts?.supported ?? []).map((s) => s.toLowerCase()));
    const unsupported: string[] = [];
    for (const name of role === 'proxy' ? ['Proxy-Require'] : ['Require', 'Proxy-Require']) {
      for (const v of getHeaderValues(req, name)) {
        const tags = parseTokenList(v);
        if (tags === null) return reject(400, 'Malformed ' + name + ' header');
        for (const t of tags) if (!supported.has(t.toLowerCase()) && !unsupported.includes(t)) unsupported.push(t);
      }
    }
    if (unsupported.length)
      return reject(420, 'Bad Extension', [{ name: 'Unsupported', value: unsupported.join(', ') }]);
  }
  // -- content (RFC 3261 §8.2.3) - endpoints only
  if (role !== 'proxy') {
    const accept = (opts?.acceptTypes ?? ['application/sdp']).map((t) => t.toLowerCase());
    const acceptHeader = [{ name: 'Accept', value: accept.join(', ') }];
    if (req.body.length > 0) {
      const ct = getHeader(req, 'Content-Type');
      if (ct === undefined) return reject(400, 'Missing Content-Type');
      if (!accept.includes(mediaType(ct))) return reject(415, 'Unsupported Media Type', acceptHeader);
      const ce = getHeaderValues(req, 'Content-Encoding');
      if (ce.some((e) => e.toLowerCase() !== 'identity'))
        return reject(415, 'Unsupported Media Type', [{ name: 'Accept-Encoding', value: 'identity' }]);
    }
    // INVITE whose Accept excludes every type we can answer with (RFC 4475 §3.3.15)
    if (req.method === 'INVITE' && countHeaders(req, 'Accept') > 0) {
      const acc = getHeaderValues(req, 'Accept').map(mediaType);
      const ok = acc.some((t) => t === '*/*' || t === 'application/*' || accept.includes(t));
      if (!ok) return reject(406, 'Not Acceptable', acceptHeader);
    }
  }
  // -- registrar (RFC 3261 §10.3): AOR in To must be a SIP/SIPS URI
  if (role === 'registrar' && req.method === 'REGISTER') {
    if (core.to.uri.kind !== 'sip') return reject(400, 'To must hold a SIP or SIPS URI');
    if (core.from.uri.kind === 'other') return reject(400, 'From holds an unsupported URI');
    for (const c of core.contact) if (c.uri.kind === 'other') return reject(400, 'Contact holds an unsupported URI');
  }
  return null;
}

function methodNotAllowed(_req: SipRequest, opts?: ValidateOptions): Rejection {
  const allowed = opts?.allowedMethods ?? DEFAULT_METHODS;
  return reject(501, 'Not Implemented', [{ name: 'Allow', value: allowed.join(', ') }]);
}

export interface ResponseCheck {
  drop: true;
  reason: string;
}

/** True for hosts a response must never be sent to: broadcast, unspecified, multicast IPv4. */
export function isUnsafeDestination(host: string): boolean {
  if (host === '0.0.0.0' || host === '[::]') return true;
  if (isIPv4(host)) {
    const first = Number(host.slice(0, host.indexOf('.')));
    if (host === '255.255.255.255' || (first >= 224 && first <= 239)) return true;
  }
  if (host.startsWith('[') && host.slice(1, 3).toLowerCase() === 'ff') return true;
  return false;
}

/**
 * Checks a parsed response before it is handled (RFC 3261 §8.1.3.3, §18.1.2, §16.7).
 * role 'uas' stands for our UAC side: more than one Via → drop. A proxy drops responses whose
 * next Via sent-by (where it would forward) is a broadcast/multicast/unspecified address
 * (RFC 4475 §3.3.10). Returns null when fine.
 */
export function validateResponse(res: SipResponse, opts?: { role?: Role }): ResponseCheck | null {
  const core = res.core;
  if (!core) return { drop: true, reason: 'Message not parsed' };
  if (core.via.length === 0 || !core.from || !core.to || core.callId === null || !core.cseq)
    return { drop: true, reason: 'Missing mandatory header' };
  for (const name of ['Call-ID', 'From', 'To', 'CSeq']) {
    if (countHeaders(res, name) > 1) return { drop: true, reason: 'Multiple ' + name + ' headers' };
  }
  const role = opts?.role ?? 'uas';
  if (role === 'proxy') {
    const next = core.via[1];
    if (next && (isUnsafeDestination(next.host) || (next.received !== null && isUnsafeDestination(next.received))))
      return { drop: true, reason: 'Next hop is a broadcast/multicast address' };
  } else if (core.via.length > 1) {
    return { drop: true, reason: 'More than one Via in a response at the UAC' };
  }
  return null;
}

/** Address-of-record key of a SIP URI user part, NUL-safe (escapes decoded, never truncated). */
export function aorKey(user: string | null, host: string): string {
  return (user === null ? '' : unescapePercent(user) + '@') + host.toLowerCase();
}
