/**
 * DTMF reception, from the two places a phone sends it:
 * - RFC 4733 telephone-events in RTP (the payload type the SDP negotiated, `a=rtpmap:<pt> telephone-event/8000`):
 *   a 4-byte payload (event, E bit, volume, duration). One key press is many packets with the same RTP timestamp;
 *   the digit is delivered once, at the first packet of its event (the end packets, sent three times, and a late
 *   repeat of an event already delivered are dropped by its timestamp).
 * - SIP INFO with `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (the digit alone).
 * Both deliver to one `DtmfReceiver`, which the IVR listens to.
 */

/** RFC 4733 §3.2 events 0-15 as digits. */
const EVENTS = '0123456789*#ABCD';

export interface TelephoneEvent {
  digit: string;
  end: boolean;
  volume: number;
  duration: number;
}

/** Decodes the 4-byte RFC 4733 payload; undefined when it is not a DTMF event (0-15) or too short. */
export function decodeTelephoneEvent(payload: Buffer): TelephoneEvent | undefined {
  if (payload.length < 4) return undefined;
  const event = payload[0]!;
  if (event >= EVENTS.length) return undefined;
  return {
    digit: EVENTS[event]!,
    end: (payload[1]! & 0x80) !== 0,
    volume: payload[1]! & 0x3f,
    duration: payload.readUInt16BE(2),
  };
}

export interface RtpHeader {
  payloadType: number;
  marker: boolean;
  seq: number;
  timestamp: number;
  ssrc: number;
  /** offset of the payload in the packet */
  offset: number;
}

/** The fixed RTP header (RFC 3550 §5.1) with CSRCs and an extension skipped; undefined when it is not RTP v2. */
export function parseRtpHeader(pkt: Buffer): RtpHeader | undefined {
  if (pkt.length < 12 || pkt[0]! >> 6 !== 2) return undefined;
  let offset = 12 + (pkt[0]! & 0x0f) * 4;
  if (pkt[0]! & 0x10) {
    if (pkt.length < offset + 4) return undefined;
    offset += 4 + pkt.readUInt16BE(offset + 2) * 4;
  }
  let end = pkt.length;
  if (pkt[0]! & 0x20) end -= pkt[pkt.length - 1]!;
  if (offset > end) return undefined;
  return {
    payloadType: pkt[1]! & 0x7f,
    marker: (pkt[1]! & 0x80) !== 0,
    seq: pkt.readUInt16BE(2),
    timestamp: pkt.readUInt32BE(4),
    ssrc: pkt.readUInt32BE(8),
    offset,
  };
}

/** The payload type of `telephone-event/8000` in an SDP body (the first audio stream's), undefined when none. */
export function telephoneEventPayloadType(sdp: Buffer | string): number | undefined {
  const text = typeof sdp === 'string' ? sdp : sdp.toString('utf8');
  const m = /^a=rtpmap:(\d{1,3})\s+telephone-event\/8000/im.exec(text);
  if (!m) return undefined;
  const pt = Number(m[1]);
  return pt >= 96 && pt <= 127 ? pt : undefined;
}

/**
 * The digit of a SIP INFO body: `application/dtmf-relay` (`Signal=5\r\nDuration=160`) or `application/dtmf` (`5`);
 * undefined for any other type or a body without one valid digit.
 */
export function digitOfInfo(contentType: string, body: Buffer | string): string | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const text = (typeof body === 'string' ? body : body.toString('utf8')).trim();
  let d: string | undefined;
  if (type === 'application/dtmf-relay') d = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(text)?.[1];
  else if (type === 'application/dtmf') d = text;
  else return undefined;
  if (d === undefined) return undefined;
  // some phones send the RFC 4733 event number (10 = *, 11 = #)
  if (d === '10') d = '*';
  else if (d === '11') d = '#';
  d = d.toUpperCase();
  return d.length === 1 && EVENTS.includes(d) ? d : undefined;
}

/** Receives the DTMF of one call (RTP and INFO) and hands each key press to `onDigit` once. */
export class DtmfReceiver {
  /** RTP timestamps of the events already delivered, per SSRC (the last few, for late repeats) */
  private readonly seen = new Map<number, number[]>();
  onDigit: (digit: string, via: 'rtp' | 'info') => void = () => undefined;

  constructor(
    /** the negotiated telephone-event payload type; undefined: RTP events are not looked for */
    public payloadType: number | undefined,
  ) {}

  /** An RTP packet of the call; true when it was a telephone-event (not audio). */
  rtp(pkt: Buffer): boolean {
    const h = parseRtpHeader(pkt);
    if (!h || this.payloadType === undefined || h.payloadType !== this.payloadType) return false;
    const ev = decodeTelephoneEvent(pkt.subarray(h.offset));
    if (!ev) return true;
    let list = this.seen.get(h.ssrc);
    if (!list) this.seen.set(h.ssrc, (list = []));
    if (list.includes(h.timestamp)) return true;
    list.push(h.timestamp);
    if (list.length > 8) list.shift();
    this.onDigit(ev.digit, 'rtp');
    return true;
  }

  /** A SIP INFO of the call; true when it carried a digit. */
  info(contentType: string, body: Buffer): boolean {
    const d = digitOfInfo(contentType, body);
    if (d === undefined) return false;
    this.onDigit(d, 'info');
    return true;
  }
}
