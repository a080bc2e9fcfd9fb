/** A webhook receiver's check, as docs/webhooks.md tells one: HMAC-SHA256 of "timestamp.body", fresh timestamp. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signatureValid(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
): boolean {
  const ts = String(headers['x-voxswitch-timestamp'] ?? '');
  const sig = String(headers['x-voxswitch-signature'] ?? '');
  const want = 'v1=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
  return fresh && sig.length === want.length && timingSafeEqual(Buffer.from(sig), Buffer.from(want));
}
