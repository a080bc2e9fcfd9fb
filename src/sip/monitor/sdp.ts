/** The listener leg's SDP: voxswitch offers one send-only G.711 stream (PCMU first, then PCMA). */

let version = 1;

export function listenerOffer(address: string, port: number): Buffer {
  const ip = address.includes(':') ? 'IP6' : 'IP4';
  const id = Date.now() % 1_000_000_000;
  const lines = [
    'v=0',
    `o=voxswitch ${id} ${version++} IN ${ip} ${address}`,
    's=voicehere',
    `c=IN ${ip} ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=ptime:20',
    'a=sendonly',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
