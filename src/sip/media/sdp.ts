/**
 * Minimal SDP (RFC 8866) reading and rewriting for the RTP relay: only the connection address (c=) and the media
 * ports (m=) are touched; every other line, the line order and the line endings are kept verbatim.
 */

export interface SdpStream {
  /** index of the m= line (0-based) */
  index: number;
  media: string;
  /** announced RTP port (0: stream disabled) */
  port: number;
  /** connection address of this stream (media-level c= or the session-level one); '' when none */
  address: string;
  /** direction attribute in effect (media-level, else session-level, else sendrecv) */
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
}

const DIRS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

/** The streams of an SDP body (empty when it is not SDP). */
export function parseSdp(body: Buffer | string): SdpStream[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const lines = text.split(/\r?\n/);
  let sessionAddr = '';
  let sessionDir: SdpStream['direction'] = 'sendrecv';
  const out: SdpStream[] = [];
  let cur: (SdpStream & { dirSet?: boolean; addrSet?: boolean }) | null = null;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const f = line.slice(2).split(' ');
      cur = {
        index: out.length,
        media: f[0] ?? '',
        port: Number.parseInt(f[1] ?? '0', 10) || 0,
        address: sessionAddr,
        direction: sessionDir,
      };
      out.push(cur);
    } else if (line.startsWith('c=')) {
      const f = line.slice(2).trim().split(/\s+/);
      const addr = (f[2] ?? '').split('/')[0] ?? '';
      if (cur) cur.address = addr;
      else sessionAddr = addr;
    } else if (line.startsWith('a=') && DIRS.has(line.slice(2).trim())) {
      const d = line.slice(2).trim() as SdpStream['direction'];
      if (cur) cur.direction = d;
      else sessionDir = d;
    }
  }
  // a session-level c=/a= after an m= line is not valid SDP; streams seen before it keep what they had
  return out.map(({ index, media, port, address, direction }) => ({ index, media, port, address, direction }));
}

export function looksLikeSdp(body: Buffer, contentType?: string): boolean {
  if (!body.length) return false;
  if (contentType && !/^application\/sdp\b/i.test(contentType.trim())) return false;
  return body.subarray(0, 4).toString('latin1').startsWith('v=');
}

/**
 * Rewrites an SDP body so its media go to `address` and the ports in `ports` (by m= line index): every c= line
 * (session and media level) gets `address`; each m= line whose index has a port in `ports` gets that port (disabled
 * streams, port 0, stay 0; a stream without a port in `ports` keeps its own port). IN IP4 / IN IP6 follows the
 * family of `address`. Everything else, including the line endings, is kept verbatim.
 */
export function rewriteSdp(body: Buffer, address: string, ports: ReadonlyArray<number | undefined>): Buffer {
  const text = body.toString('utf8');
  const family = address.includes(':') ? 'IP6' : 'IP4';
  let m = -1;
  const parts = text.split(/(\r?\n)/); // keep the separators
  for (let i = 0; i < parts.length; i += 2) {
    const line = parts[i]!;
    if (line.startsWith('m=')) {
      m++;
      const f = line.split(' ');
      const port = ports[m];
      const cur = f[1] ?? '';
      const slash = cur.indexOf('/'); // m=audio 49170/2 RTP/AVP …: keep the port count
      const curPort = Number.parseInt(slash >= 0 ? cur.slice(0, slash) : cur, 10);
      if (port !== undefined && curPort !== 0 && f.length > 1) {
        f[1] = String(port) + (slash >= 0 ? cur.slice(slash) : '');
        parts[i] = f.join(' ');
      }
    } else if (line.startsWith('c=')) {
      // a stream this relay does not carry keeps its own connection address
      if (m >= 0 && ports[m] === undefined) continue;
      const f = line.slice(2).trim().split(/\s+/);
      const ttl = (f[2] ?? '').split('/').slice(1); // multicast TTL / count, kept
      parts[i] = `c=${f[0] ?? 'IN'} ${family} ${[address, ...ttl].join('/')}`;
    }
  }
  return Buffer.from(parts.join(''), 'utf8');
}
