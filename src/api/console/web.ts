/**
 * HTTP plumbing of the web console: the security headers every answer carries, JSON answers, the session cookie,
 * the same-origin check of state-changing requests and a bounded body reader.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostOf } from '../transports/source.js';

export const COOKIE = 'vxsession';

/** A strict policy: scripts, styles and connections from this server only; never framed. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function isSecure(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(JSON.stringify(body));
}

export function sendError(res: ServerResponse, status: number, error: string): void {
  sendJson(res, status, { error });
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/console${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure: boolean): string {
  return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0${secure ? '; Secure' : ''}`;
}

export function cookieOf(req: IncomingMessage, name = COOKIE): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Whether a state-changing request comes from this server's own pages: an Origin (when given, and browsers give it
 * on every POST) equal to this request's scheme and Host, naming one of our hosts; no cross-site fetch metadata.
 */
export function sameOrigin(req: IncomingMessage, ownHosts: Set<string>): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return site === undefined;
  const host = req.headers.host ?? '';
  const expect = `${isSecure(req) ? 'https' : 'http'}://${host}`.toLowerCase();
  const h = hostOf(host);
  return origin.toLowerCase() === expect && h !== undefined && ownHosts.has(h);
}

export class BodyError extends Error {}

/** The request body parsed as a JSON object (at most `max` bytes). */
export function readJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      req.resume();
      reject(new BodyError('send the body as application/json'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => {
      if (size > max) return reject(new BodyError(`request body larger than ${max} bytes`));
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new BodyError('the body is not a JSON object'));
      }
    });
    req.on('error', reject);
  });
}

/** String values of a JSON object (other types dropped), keys lower case. */
export function stringParams(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k.toLowerCase()] = x;
    else if (typeof x === 'number' || typeof x === 'boolean') out[k.toLowerCase()] = String(x);
  }
  return out;
}
