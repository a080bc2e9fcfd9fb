/** The conference's SDP: which G.711 codec an offer allows, and the answer voxswitch sends. */
import { looksLikeSdp, parseSdp } from '../media/sdp.js';
import type { G711 } from './g711.js';

export interface ChosenCodec {
  codec: G711;
  /** where the participant receives RTP (its audio stream's connection address and port) */
  address: string;
  port: number;
}

/**
 * The first of PCMU (0) / PCMA (8) in the order of the offer's first active audio m= line; undefined when the body
 * is no SDP offer or lists neither.
 */
export function chooseCodec(body: Buffer, contentType: string | undefined): ChosenCodec | undefined {
  if (!body.length || !looksLikeSdp(body, contentType)) return undefined;
  const streams = parseSdp(body);
  const lines = body.toString('latin1').split(/\r?\n/);
  const mLines = lines.filter((l) => l.startsWith('m='));
  for (const s of streams) {
    if (s.media !== 'audio' || s.port === 0) continue;
    const formats = (mLines[s.index] ?? '').trim().split(/\s+/).slice(3);
    for (const f of formats) {
      if (f === '0') return { codec: 'pcmu', address: s.address, port: s.port };
      if (f === '8') return { codec: 'pcma', address: s.address, port: s.port };
    }
  }
  return undefined;
}

let version = 1;

/** voxswitch's answer: one audio stream on `port` with the chosen codec (and RFC 4733 telephone-events). */
export function answerSdp(address: string, port: number, codec: G711): Buffer {
  const ip6 = address.includes(':');
  const id = Date.now() % 1_000_000_000;
  const pt = codec === 'pcmu' ? 0 : 8;
  const name = codec === 'pcmu' ? 'PCMU' : 'PCMA';
  const lines = [
    'v=0',
    `o=voxswitch ${id} ${version++} IN ${ip6 ? 'IP6' : 'IP4'} ${address}`,
    's=conference',
    `c=IN ${ip6 ? 'IP6' : 'IP4'} ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${pt} 101`,
    `a=rtpmap:${pt} ${name}/8000`,
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
