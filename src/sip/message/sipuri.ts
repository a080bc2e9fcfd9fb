/** Building SIP URIs and reading their parts: the one user-part escaping, host bracketing and display quoting. */
import { unescapeUriComponent } from './uri.js';
import type { Uri } from './types.js';

/** Characters allowed unescaped in the user part (RFC 3261 user = unreserved / escaped / user-unreserved). */
const USER_UNSAFE = /[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g;

/** Escapes a username or number for the user part of a SIP URI. */
export function escapeUser(u: string): string {
  return u.replace(USER_UNSAFE, (c) => encodeURIComponent(c));
}

/** A host for a URI: IPv6 addresses in brackets, anything else as it is. */
export function uriHostPart(h: string): string {
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/** `sip:user@host[:port][;transport=t]` with the user escaped and an IPv6 host bracketed (udp is the default). */
export function sipUri(user: string, host: string, port?: number, transport?: string): string {
  const t = transport && transport !== 'udp' ? `;transport=${transport}` : '';
  return `sip:${escapeUser(user)}@${uriHostPart(host)}${port ? `:${port}` : ''}${t}`;
}

/** The user part of a sip:/sips: URI, unescaped; null for other URIs or no user. */
export function uriUser(u: Uri | undefined | null): string | null {
  if (!u || u.kind !== 'sip' || u.user === null) return null;
  return unescapeUriComponent(u.user);
}

/** Host of a sip URI without brackets/port, or null. */
export function uriHost(u: Uri | undefined | null): string | null {
  if (!u || u.kind !== 'sip') return null;
  return u.host;
}

/** Text for a display name in a From header (quoted-string). */
export function quoteDisplay(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c).replace(/[\r\n]/g, ' ') + '"';
}
