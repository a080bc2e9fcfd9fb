/**
 * ITU-T G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8) between 16-bit linear PCM and 8-bit
 * code words. The tables are computed here from the segment rules of the recommendation when the module loads:
 * 256 entries to decode, 65536 to encode (one per 16-bit sample), so a frame converts with one lookup per sample.
 */

const BIAS = 0x84;
const CLIP = 32635;

function ulawOf(sample: number): number {
  let s = sample;
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mantissa = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mantissa) & 0xff;
}

function linearOfUlaw(code: number): number {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4);
  return u & 0x80 ? BIAS - t : t - BIAS;
}

function alawOf(sample: number): number {
  let v = sample >> 3; // 13-bit magnitude range
  let mask: number;
  if (v >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    v = -v - 1;
  }
  let seg = 0;
  for (let end = 0x1f; seg < 8 && v > end; end = (end << 1) | 1) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const mantissa = seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return ((seg << 4) | mantissa) ^ mask;
}

function linearOfAlaw(code: number): number {
  const a = code ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else {
    t += 0x108;
    if (seg > 1) t <<= seg - 1;
  }
  return a & 0x80 ? t : -t;
}

const ULAW_DECODE = new Int16Array(256);
const ALAW_DECODE = new Int16Array(256);
const ULAW_ENCODE = new Uint8Array(65536);
const ALAW_ENCODE = new Uint8Array(65536);
for (let c = 0; c < 256; c++) {
  ULAW_DECODE[c] = linearOfUlaw(c);
  ALAW_DECODE[c] = linearOfAlaw(c);
}
for (let s = -32768; s < 32768; s++) {
  ULAW_ENCODE[s & 0xffff] = ulawOf(s);
  ALAW_ENCODE[s & 0xffff] = alawOf(s);
}

export type G711 = 'pcmu' | 'pcma';

/** RTP payload type of a codec (RFC 3551). */
export const PAYLOAD_TYPE: Record<G711, number> = { pcmu: 0, pcma: 8 };

export function ulawDecode(code: number): number {
  return ULAW_DECODE[code & 0xff]!;
}
export function ulawEncode(sample: number): number {
  return ULAW_ENCODE[sample & 0xffff]!;
}
export function alawDecode(code: number): number {
  return ALAW_DECODE[code & 0xff]!;
}
export function alawEncode(sample: number): number {
  return ALAW_ENCODE[sample & 0xffff]!;
}

/** Decodes `src` (code words) into `out` (linear samples); returns `out`. */
export function decode(codec: G711, src: Uint8Array, out: Int16Array = new Int16Array(src.length)): Int16Array {
  const table = codec === 'pcmu' ? ULAW_DECODE : ALAW_DECODE;
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

/** Encodes `src` (linear samples) into `out` (code words); returns `out`. */
export function encode(codec: G711, src: Int16Array, out: Uint8Array = new Uint8Array(src.length)): Uint8Array {
  const table = codec === 'pcmu' ? ULAW_ENCODE : ALAW_ENCODE;
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]! & 0xffff]!;
  return out;
}
