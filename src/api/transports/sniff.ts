/** Tells an HTTP request from a bare request line by its first bytes, on one shared port. */
export type Sniffed = 'http' | 'line' | 'more';

const MAX_SNIFF = 8192;

export function sniff(buf: Buffer): Sniffed {
  const nl = buf.indexOf(10);
  const end = nl < 0 ? Math.min(buf.length, MAX_SNIFF) : nl;
  const head = buf.subarray(0, end).toString('latin1');
  if (nl < 0) {
    if (buf.length >= MAX_SNIFF) return 'line';
    // still possibly "GET /… HTTP/1.1": wait for the end of the line
    const m = /^[A-Z]{1,10}(?: (\S*)(?: (\S*))?)?$/.exec(head);
    if (!m) return 'line';
    const version = m[2];
    return version === undefined || 'HTTP/1.1'.startsWith(version) || 'HTTP/1.0'.startsWith(version) ? 'more' : 'line';
  }
  return /^[A-Z]{3,10} \S+ HTTP\/\d\.\d\r?$/.test(head) ? 'http' : 'line';
}
