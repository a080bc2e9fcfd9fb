/**
 * SMS text encoding and splitting (pure, unit-tested with fast-check).
 *
 * GSM 03.38 7-bit: the basic table (one septet a character) and the extension table (ESC + one septet: two septets
 * a character, never split across parts). A single message carries 160 septets, each part of a concatenated one
 * 153 (the 6-octet UDH takes the room of 7). Septets go to the SMSC unpacked, one octet each (data_coding 0, the
 * SMPP convention). UCS-2 (data_coding 8): UTF-16BE code units, 70 in one message, 67 a part; a surrogate pair (a
 * character beyond the BMP) is never split. Concatenated parts carry the 8-bit-reference UDH
 * (05 00 03 ref total seq) and esm_class 0x40.
 */

/** The GSM 03.38 basic table, by septet value (0x1B, the escape, is not a character). */
const BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** The extension table: character → septet after ESC. */
const EXTENSION: Record<string, number> = {
  '\f': 0x0a,
  '^': 0x14,
  '{': 0x28,
  '}': 0x29,
  '\\': 0x2f,
  '[': 0x3c,
  '~': 0x3d,
  ']': 0x3e,
  '|': 0x40,
  '€': 0x65,
};
const ESC = 0x1b;

const basicOf = new Map<string, number>();
for (let i = 0; i < BASIC.length; i++) if (i !== ESC) basicOf.set(BASIC[i]!, i);
const extOf = new Map<string, number>(Object.entries(EXTENSION));
const basicAt = [...BASIC];
const extAt = new Map<number, string>([...extOf].map(([c, v]) => [v, c]));

export type SmsEncoding = 'gsm7' | 'ucs2';

/** data_coding of each encoding. */
export const DATA_CODING: Record<SmsEncoding, number> = { gsm7: 0x00, ucs2: 0x08 };

/** Units (septets or UTF-16 code units) of one single message and of each concatenated part. */
export const LIMITS: Record<SmsEncoding, { single: number; part: number }> = {
  gsm7: { single: 160, part: 153 },
  ucs2: { single: 70, part: 67 },
};

/** The distinct characters of `text` that GSM 03.38 (basic + extension table) cannot carry, in order of appearance. */
export function nonGsmChars(text: string): string[] {
  const out = new Set<string>();
  for (const ch of text) if (!basicOf.has(ch) && !extOf.has(ch)) out.add(ch);
  return [...out];
}

/** The septets of one character: one (basic), two (ESC + extension) or undefined. */
function septetsOf(ch: string): number[] | undefined {
  const b = basicOf.get(ch);
  if (b !== undefined) return [b];
  const e = extOf.get(ch);
  return e === undefined ? undefined : [ESC, e];
}

/** GSM 03.38 septets of the text, unpacked (one octet each); throws RangeError on a character outside GSM. */
export function encodeGsm7(text: string): Buffer {
  const out: number[] = [];
  for (const ch of text) {
    const s = septetsOf(ch);
    if (!s) throw new RangeError(`character ${JSON.stringify(ch)} is not in GSM 03.38`);
    out.push(...s);
  }
  return Buffer.from(out);
}

/** Text of unpacked GSM septets (an unknown extension septet reads as its basic character, as 03.38 says). */
export function decodeGsm7(buf: Buffer): string {
  let s = '';
  for (let i = 0; i < buf.length; i++) {
    const v = buf[i]! & 0x7f;
    if (v === ESC && i + 1 < buf.length) {
      const n = buf[++i]! & 0x7f;
      s += extAt.get(n) ?? basicAt[n]!;
    } else if (v !== ESC) s += basicAt[v]!;
  }
  return s;
}

export function encodeUcs2(text: string): Buffer {
  const b = Buffer.from(text, 'utf16le');
  return b.swap16();
}

export function decodeUcs2(buf: Buffer): string {
  const even = buf.length - (buf.length % 2);
  return Buffer.from(buf.subarray(0, even)).swap16().toString('utf16le');
}

export interface EncodedSms {
  encoding: SmsEncoding;
  dataCoding: number;
  /** The payload of each part (without UDH). */
  parts: Buffer[];
  /** Septets (gsm7) or UTF-16 code units (ucs2) of the whole text. */
  units: number;
}

/**
 * Splits `text` into parts of the encoding's limits: one part when it fits the single limit, else parts of the
 * part limit, never splitting an escape pair (gsm7) or a surrogate pair (ucs2). Throws RangeError for a character
 * outside GSM with gsm7.
 */
export function encodeSms(text: string, encoding: SmsEncoding): EncodedSms {
  const lim = LIMITS[encoding];
  // each character as its units: septets (gsm7) or UTF-16BE code units (ucs2, 2 octets each)
  const chars: Buffer[] = [];
  for (const ch of text) chars.push(encoding === 'gsm7' ? encodeGsm7(ch) : encodeUcs2(ch));
  const unitOf = (b: Buffer) => (encoding === 'gsm7' ? b.length : b.length / 2);
  const units = chars.reduce((n, b) => n + unitOf(b), 0);
  const dataCoding = DATA_CODING[encoding];
  if (units <= lim.single) return { encoding, dataCoding, parts: [Buffer.concat(chars)], units };
  const parts: Buffer[] = [];
  let cur: Buffer[] = [];
  let used = 0;
  for (const b of chars) {
    const u = unitOf(b);
    if (used + u > lim.part) {
      parts.push(Buffer.concat(cur));
      cur = [];
      used = 0;
    }
    cur.push(b);
    used += u;
  }
  if (cur.length) parts.push(Buffer.concat(cur));
  return { encoding, dataCoding, parts, units };
}

/** The text of an encoded payload. */
export function decodePayload(buf: Buffer, encoding: SmsEncoding): string {
  return encoding === 'gsm7' ? decodeGsm7(buf) : decodeUcs2(buf);
}

/** The concatenation UDH (8-bit reference): 05 00 03 ref total seq (seq from 1). */
export function concatUdh(ref: number, total: number, seq: number): Buffer {
  return Buffer.from([0x05, 0x00, 0x03, ref & 0xff, total & 0xff, seq & 0xff]);
}

/** esm_class bit saying short_message starts with a UDH. */
export const ESM_UDHI = 0x40;

/** The short_message of part `index` (from 0) of `total` and its esm_class. */
export function partMessage(payload: Buffer, ref: number, total: number, index: number): { sm: Buffer; esm: number } {
  if (total <= 1) return { sm: payload, esm: 0 };
  return { sm: Buffer.concat([concatUdh(ref, total, index + 1), payload]), esm: ESM_UDHI };
}

/** A concatenation header read from a short_message with UDHI: 8-bit (IE 0) or 16-bit (IE 8) reference. */
export interface ConcatInfo {
  ref: number;
  total: number;
  seq: number;
}

/** The concatenation information element of a UDH (the octets from the UDH length octet on), if any. */
export function readConcat(udh: Buffer): ConcatInfo | undefined {
  let i = 1;
  while (i + 1 < udh.length) {
    const iei = udh[i]!;
    const len = udh[i + 1]!;
    const v = udh.subarray(i + 2, i + 2 + len);
    if (iei === 0x00 && len === 3) return { ref: v[0]!, total: v[1]!, seq: v[2]! };
    if (iei === 0x08 && len === 4) return { ref: v.readUInt16BE(0), total: v[2]!, seq: v[3]! };
    i += 2 + len;
  }
  return undefined;
}
