/**
 * Tells an HTTP request from a bare request line by its first bytes, on one shared port, and repairs the request
 * line of an API request typed by hand (raw spaces or non-ASCII bytes in the target) so node:http accepts it.
 */
export type Sniffed = 'http' | 'line' | 'more';

const MAX_SNIFF = 8192;
/** `METHOD target HTTP/1.x` where the target may hold raw spaces (an API URL pasted as typed). */
const LOOSE_REQUEST_LINE = /^([A-Z]{3,10}) (\/.*) (HTTP\/1\.[01])\r?$/;
const API_TARGET = /mvapireq|xmapi\//i;

export function sniff(buf: Buffer): Sniffed {
  const nl = buf.indexOf(10);
  const end = nl < 0 ? Math.min(buf.length, MAX_SNIFF) : nl;
  const head = buf.subarray(0, end).toString('latin1');
  if (nl < 0) {
    if (buf.length >= MAX_SNIFF) return 'line';
    // an API target, perhaps with raw spaces: wait for the end of the line (bounded by MAX_SNIFF)
    const api = /^[A-Z]{3,10} (\/\S*)/.exec(head);
    if (api && API_TARGET.test(api[1]!)) return 'more';
    // still possibly "GET /… HTTP/1.1": wait for the end of the line
    const m = /^[A-Z]{1,10}(?: (\S*)(?: (\S*))?)?$/.exec(head);
    if (!m) return 'line';
    const version = m[2];
    return version === undefined || 'HTTP/1.1'.startsWith(version) || 'HTTP/1.0'.startsWith(version) ? 'more' : 'line';
  }
  if (/^[A-Z]{3,10} \S+ HTTP\/\d\.\d\r?$/.test(head)) return 'http';
  const loose = LOOSE_REQUEST_LINE.exec(head);
  return loose && API_TARGET.test(loose[2]!) ? 'http' : 'line';
}

/** Bytes node:http refuses in a request target: controls, space, DEL and non-ASCII (UTF-8) bytes. */
function needsEscape(b: number): boolean {
  return b <= 0x20 || b >= 0x7f;
}

/**
 * The buffered bytes with the first line's target percent-encoded where node:http would refuse it (raw spaces,
 * tabs, UTF-8), for an API target (`mvapireq`, `xmapi/`) only; undefined when nothing needs repairing. Only the
 * first line of a connection is looked at; the method and the final ` HTTP/1.x` stay as they are.
 */
export function repairRequestLine(buf: Buffer): Buffer | undefined {
  const nl = buf.indexOf(10);
  if (nl < 0 || nl > MAX_SNIFF) return undefined;
  const line = buf.subarray(0, nl).toString('latin1');
  const m = LOOSE_REQUEST_LINE.exec(line);
  if (!m || !API_TARGET.test(m[2]!)) return undefined;
  const start = m[1]!.length + 1;
  const target = buf.subarray(start, start + Buffer.byteLength(m[2]!, 'latin1'));
  if (!target.some(needsEscape)) return undefined;
  let fixed = '';
  for (const b of target)
    fixed += needsEscape(b) ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  const cr = line.endsWith('\r') ? '\r' : '';
  const first = Buffer.from(`${m[1]} ${fixed} ${m[3]}${cr}\n`, 'latin1');
  return Buffer.concat([first, buf.subarray(nl + 1)]);
}
