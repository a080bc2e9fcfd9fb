/**
 * What a webhook delivery carries and how a receiver checks it: the signature is the hex HMAC-SHA256, keyed with
 * the hook's secret, of `timestamp + "." + body` (docs/webhooks.md). Also the URL rule of addwebhook.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { IpSet, normalizeIp } from '../security/ip.js';
import { DomainError } from '../errors.js';

/** The event kinds a hook may subscribe to; `call.*` is reserved for call events. */
export const EVENT_KINDS = ['sms.status', 'sms.incoming', 'mail.failed', 'fax.status'] as const;
export type EventKind = (typeof EVENT_KINDS)[number] | `call.${string}`;

export function sign(secret: string, timestamp: string, body: string): string {
  return 'v1=' + createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/** Constant-time check of an X-Voxswitch-Signature header. */
export function verify(secret: string, timestamp: string, body: string, header: string): boolean {
  const want = Buffer.from(sign(secret, timestamp, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** The subscription list of addwebhook: kinds, `sms.*`-style prefixes, or `*`; normalised, comma separated. */
export function parseEventList(raw: string): string[] {
  const items = raw
    .split(/[\s,;]+/)
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (!items.length) throw new DomainError(`events: missing; one or more of ${EVENT_KINDS.join(', ')}, call.*, *`);
  for (const it of items) {
    const known =
      it === '*' ||
      (EVENT_KINDS as readonly string[]).includes(it) ||
      /^call\.[a-z0-9_*]{1,32}$/.test(it) ||
      EVENT_KINDS.some((k) => it === `${k.split('.')[0]}.*`);
    if (!known) throw new DomainError(`events: unknown event kind "${it.slice(0, 40)}" (${EVENT_KINDS.join(', ')})`);
  }
  return [...new Set(items)];
}

export function matches(events: string[], kind: string): boolean {
  return events.some((e) => e === '*' || e === kind || (e.endsWith('.*') && kind.startsWith(e.slice(0, -1))));
}

/** Link-local and cloud metadata addresses: a webhook there could read the host's instance credentials. */
const LINK_LOCAL = new IpSet(['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254', '100.100.100.200']);
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'metadata.azure.com']);

export function forbiddenAddress(hostOrIp: string): boolean {
  const h = normalizeIp(hostOrIp.replace(/^\[|\]$/g, '').toLowerCase());
  if (isIP(h)) return LINK_LOCAL.has(h);
  return METADATA_NAMES.has(h.replace(/\.$/, ''));
}

/** A webhook URL: http(s), no credentials, at most 2048 characters, no link-local target unless allowed. */
export function checkWebhookUrl(raw: string, allowLinkLocal: boolean): URL {
  const s = raw.trim();
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new DomainError('url: not a URL (expected http://… or https://…)');
  }
  if (s.length > 2048) throw new DomainError('url: longer than 2048 characters');
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DomainError('url: only http and https are allowed');
  if (u.username || u.password) throw new DomainError('url: credentials in the URL are not allowed (use the secret)');
  if (!allowLinkLocal && forbiddenAddress(u.hostname))
    throw new DomainError(
      'url: link-local and cloud metadata addresses are refused (set webhookallowprivate=true to allow them)',
      'denied',
    );
  return u;
}
