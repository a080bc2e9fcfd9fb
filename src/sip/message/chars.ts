// Character class tables for the SIP grammar (RFC 3261 §25.1). One lookup per
// character instead of regular expressions on the hot path.

export const C_ALNUM = 1;
export const C_TOKEN = 2; // token chars (alphanum / - . ! % * _ + ` ' ~)
export const C_UNRESERVED = 4; // alphanum / mark
export const C_USER = 8; // user: unreserved / escaped / user-unreserved
export const C_PASSWORD = 16; // password: unreserved / escaped / & = + $ ,
export const C_PARAM = 32; // paramchar: unreserved / escaped / param-unreserved
export const C_HNV = 64; // hname/hvalue: unreserved / escaped / hnv-unreserved
export const C_URIC = 128; // uric: reserved / unreserved / escaped
export const C_WORD = 256; // word (Call-ID)
export const C_HEX = 512;
export const C_DIGIT = 1024;
export const C_HOST = 2048; // hostname chars: alphanum / - .
export const C_GENVAL = 4096; // token + host chars usable in a gen-value ( : [ ] )

export const CT = new Uint16Array(128);

function add(chars: string, flag: number): void {
  for (let i = 0; i < chars.length; i++) CT[chars.charCodeAt(i)] |= flag;
}

const ALPHA = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGIT = '0123456789';
const ALNUM = ALPHA + DIGIT;
const MARK = "-_.!~*'()";
const UNRESERVED = ALNUM + MARK;
const RESERVED = ';/?:@&=+$,';

add(ALNUM, C_ALNUM);
add(DIGIT, C_DIGIT);
add(DIGIT + 'abcdefABCDEF', C_HEX);
add(ALNUM + "-.!%*_+`'~", C_TOKEN);
add(UNRESERVED, C_UNRESERVED);
add(UNRESERVED + '%' + '&=+$,;?/', C_USER);
add(UNRESERVED + '%' + '&=+$,', C_PASSWORD);
add(UNRESERVED + '%' + '[]/:&+$', C_PARAM);
add(UNRESERVED + '%' + '[]/?:+$', C_HNV);
add(UNRESERVED + '%' + RESERVED, C_URIC);
add(ALNUM + '-.!%*_+`\'~()<>:\\"/[]?{}', C_WORD);
add(ALNUM + '-.', C_HOST);
add(ALNUM + "-.!%*_+`'~" + ':[]', C_GENVAL);

/** True when c (a UTF-16 code unit) has one of the given class flags. Non-ASCII never does. */
export function is(c: number, flag: number): boolean {
  return c < 128 && (CT[c] & flag) !== 0;
}

export const SP = 32;
export const HTAB = 9;
export const CR = 13;
export const LF = 10;

export function isWs(c: number): boolean {
  return c === SP || c === HTAB;
}

/** Skips SP/HTAB from p, returns the new position. */
export function skipWs(s: string, p: number, end: number): number {
  while (p < end) {
    const c = s.charCodeAt(p);
    if (c !== SP && c !== HTAB) break;
    p++;
  }
  return p;
}

/** Trims SP/HTAB (only) on both sides. */
export function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Scans a run of chars with the given class flag, returns the end position. */
export function scan(s: string, p: number, end: number, flag: number): number {
  while (p < end) {
    const c = s.charCodeAt(p);
    if (c >= 128 || (CT[c] & flag) === 0) break;
    p++;
  }
  return p;
}

/** True when s[a..b) is a non-empty token. */
export function isToken(s: string, a = 0, b = s.length): boolean {
  return b > a && scan(s, a, b, C_TOKEN) === b;
}

/**
 * Checks that every '%' in s[a..b) is followed by two hex digits and every char
 * has the given class flag. Returns true when valid.
 */
export function isEscapedRun(s: string, a: number, b: number, flag: number): boolean {
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (CT[c] & flag) === 0) return false;
    if (c === 37 /* % */) {
      if (i + 2 >= b) return false;
      if (!is(s.charCodeAt(i + 1), C_HEX) || !is(s.charCodeAt(i + 2), C_HEX)) return false;
      i += 2;
    }
  }
  return true;
}

/** Decodes %HH escapes (for comparison purposes only; never for display or forwarding). */
export function unescapePercent(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 && i + 2 < s.length && is(s.charCodeAt(i + 1), C_HEX) && is(s.charCodeAt(i + 2), C_HEX)) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 128) {
      bytes.push(c);
    } else {
      const cp = s.codePointAt(i) ?? 0xfffd;
      if (cp > 0xffff) i++;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('latin1');
}

/** Case-insensitive ASCII comparison without allocating. */
export function eqIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}
