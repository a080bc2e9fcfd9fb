/**
 * Minimal SDP (RFC 8866) reading and rewriting for the RTP relay: only the connection address (c=), the media
 * ports (m=) and the RTCP port (a=rtcp:, RFC 3605) are touched; every other line, the line order and the line
 * endings are kept verbatim.
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
  /** where RTCP goes: a=rtcp:PORT [IN IP4 ADDR] (RFC 3605), else the RTP port + 1 (0 when the stream is off) */
  rtcp: { port: number; address: string };
  /** a=rtcp-mux (RFC 5761): RTCP shares the RTP port */
  rtcpMux: boolean;
}

const DIRS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

/** The streams of an SDP body (empty when it is not SDP). */
export function parseSdp(body: Buffer | string): SdpStream[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const lines = text.split(/\r?\n/);
  let sessionAddr = '';
  let sessionDir: SdpStream['direction'] = 'sendrecv';
  const out: SdpStream[] = [];
  type Parsed = Omit<SdpStream, 'rtcp'> & { rtcpLine?: { port: number; address: string } };
  let cur: Parsed | null = null;
  const parsed: Parsed[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const f = line.slice(2).split(' ');
      cur = {
        index: parsed.length,
        media: f[0] ?? '',
        port: Number.parseInt(f[1] ?? '0', 10) || 0,
        address: sessionAddr,
        direction: sessionDir,
        rtcpMux: false,
      };
      parsed.push(cur);
    } else if (line.startsWith('c=')) {
      const f = line.slice(2).trim().split(/\s+/);
      const addr = (f[2] ?? '').split('/')[0] ?? '';
      if (cur) cur.address = addr;
      else sessionAddr = addr;
    } else if (cur && line.startsWith('a=rtcp:')) {
      const f = line.slice(7).trim().split(/\s+/);
      const port = Number.parseInt(f[0] ?? '', 10);
      if (port > 0 && port < 65536) cur.rtcpLine = { port, address: f[3] ?? '' };
    } else if (cur && line.trim() === 'a=rtcp-mux') {
      cur.rtcpMux = true;
    } else if (line.startsWith('a=') && DIRS.has(line.slice(2).trim())) {
      const d = line.slice(2).trim() as SdpStream['direction'];
      if (cur) cur.direction = d;
      else sessionDir = d;
    }
  }
  // a session-level c=/a= after an m= line is not valid SDP; streams seen before it keep what they had
  for (const { rtcpLine, ...st } of parsed) {
    const rtcp = st.port === 0 ? { port: 0, address: st.address } : { port: st.port + 1, address: st.address };
    if (rtcpLine && st.port !== 0)
      Object.assign(rtcp, { port: rtcpLine.port, address: rtcpLine.address || st.address });
    out.push({ ...st, rtcp });
  }
  return out;
}

export function looksLikeSdp(body: Buffer, contentType?: string): boolean {
  if (!body.length) return false;
  if (contentType && !/^application\/sdp\b/i.test(contentType.trim())) return false;
  return body.subarray(0, 4).toString('latin1').startsWith('v=');
}

/**
 * Rewrites an SDP body so its media go to `address` and the ports in `ports` (by m= line index): every c= line
 * (session and media level) gets `address`; each m= line whose index has a port in `ports` gets that port (disabled
 * streams, port 0, stay 0; a stream without a port in `ports` keeps its own port); its a=rtcp: line, if any, gets that
 * port + 1 (and `address` when it names one). IN IP4 / IN IP6 follows the family of `address`. Everything else,
 * including the line endings, is kept verbatim.
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
    } else if (line.startsWith('a=rtcp:') && m >= 0 && ports[m] !== undefined) {
      const f = line.slice(7).trim().split(/\s+/);
      const rest = f.length >= 4 ? ` ${f[1]} ${family} ${address}` : '';
      parts[i] = `a=rtcp:${ports[m]! + 1}${rest}`;
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
