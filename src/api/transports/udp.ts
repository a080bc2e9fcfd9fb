/** UDP: one request per datagram (up to 1490 bytes, as the document says), one answer datagram back. */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { ApiGateway } from '../gateway.js';
import { normalizeIp } from '../../domain/security/ip.js';

export const MAX_DATAGRAM = 1490;
const MAX_ANSWER = 65_000;

export function createUdpApi(address: string, gateway: ApiGateway, onError: (e: unknown) => void): UdpSocket {
  const sock = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false });
  sock.on('message', (msg, rinfo) => {
    const source = { transport: 'udp' as const, ip: normalizeIp(rinfo.address), port: rinfo.port, browser: false };
    const answer = (body: string) => {
      let b = Buffer.from(body, 'utf8');
      if (b.length > MAX_ANSWER)
        b = Buffer.concat([b.subarray(0, MAX_ANSWER - 40), Buffer.from('\r\n…answer truncated\r\nERROR')]);
      sock.send(b, rinfo.port, rinfo.address, (e) => e && onError(e));
    };
    if (msg.length > MAX_DATAGRAM) {
      answer(`request larger than ${MAX_DATAGRAM} bytes: use TCP or HTTP\r\nERROR`);
      return;
    }
    const text = msg.includes(0) ? '\u0000' : msg.toString('utf8');
    gateway
      .message(text, source)
      .then(({ enc }) => answer(enc.body))
      .catch(onError);
  });
  sock.on('error', onError);
  return sock;
}
