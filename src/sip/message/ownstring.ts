/**
 * A string of its own for a value kept long after its message. The parser's header values are slices of the whole
 * message text (V8 keeps a slice of 13 characters or more, and a concatenation, as pointers into its parts), so a
 * Contact, Call-ID or transaction key kept as parsed would keep the entire message alive with it. Short strings
 * are copies already.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}
