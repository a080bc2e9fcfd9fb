/** SDP helpers for call control (RFC 3725 third-party call control). */

/**
 * An answer that rejects every media stream of an offer (RFC 3264 §6: port 0 for each m= line, same count and
 * order). Sent in the ACK of a 2xx that carried an offer when the other party could not be reached, so the ACK is
 * still a valid answer before the BYE that follows it.
 */
export function rejectingAnswer(offer: Buffer | string): Buffer {
  const lines = offer.toString('utf8').split(/\r?\n/);
  const media = lines.filter((l) => l.startsWith('m='));
  const conn = lines.find((l) => l.startsWith('c=')) ?? 'c=IN IP4 0.0.0.0';
  const out = [
    'v=0',
    `o=voxswitch ${Date.now()} 1 IN IP4 0.0.0.0`,
    's=-',
    conn.startsWith('c=IN IP6') ? 'c=IN IP6 ::' : 'c=IN IP4 0.0.0.0',
    't=0 0',
  ];
  for (const m of media) {
    // m=<media> <port>[/n] <proto> <fmt> ...
    const parts = m.slice(2).split(' ');
    if (parts.length >= 4) out.push(`m=${parts[0]} 0 ${parts.slice(2).join(' ')}`);
  }
  return Buffer.from(out.join('\r\n') + '\r\n', 'utf8');
}

/** True when the body looks like a session description with at least one media line. */
export function hasMedia(body: Buffer | undefined): boolean {
  if (!body || body.length === 0) return false;
  const s = body.toString('utf8');
  return s.startsWith('v=0') && /(^|\n)m=/.test(s);
}
