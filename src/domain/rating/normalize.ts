/**
 * Number normalisation to E.164 digits without '+':
 *  - a SIP/tel URI is reduced to its user part ("sip:+3612345@host" → "+3612345");
 *  - spaces, dashes, dots, slashes and parentheses are removed;
 *  - "+…" and "<internationalprefix>…" (default "00") are international: the rest is the number;
 *  - "<nationalprefix>…" (default "0") is national: the caller's country calling code is put in front;
 *  - anything else that is all digits is taken as already international (E.164 without '+').
 */
import { DomainError } from '../errors.js';

export interface NormalizeOptions {
  internationalPrefix: string;
  nationalPrefix: string;
  /** The caller's country calling code ("36", "1"); '' when unknown. */
  countryCode: string;
}

/** A dialled number that cannot be brought to E.164 (old-API status 421, a bad parameter). */
export class InvalidNumberError extends DomainError {
  constructor(message: string) {
    super(message, 'input', { legacyStatus: 421 });
  }
}

const CC_RE = /^\+?([1-9]\d{0,3})$/;

/** The calling code of a tb_users.country value ("36", "+1"), else the fallback (defaultcountrycode). */
export function countryCodeOf(country: string | null | undefined, fallback: string): string {
  const m = CC_RE.exec((country ?? '').trim());
  if (m) return m[1]!;
  const f = CC_RE.exec(fallback.trim());
  return f ? f[1]! : '';
}

/** The E.164 digits (no '+') of a dialled number, by the rules above. Throws InvalidNumberError. */
export function toE164(raw: string, o: NormalizeOptions): string {
  let s = raw.trim();
  const uri = /^(?:sips?|tel):([^@;]*)/i.exec(s);
  if (uri) s = uri[1]!;
  else if (s.includes('@')) s = s.slice(0, s.indexOf('@'));
  s = s.replace(/[\s\-().\/]/g, '');
  if (s === '') throw new InvalidNumberError('bnum: empty number');
  let out: string;
  if (s.startsWith('+')) {
    out = s.slice(1);
  } else if (o.internationalPrefix && s.startsWith(o.internationalPrefix)) {
    out = s.slice(o.internationalPrefix.length);
  } else if (o.nationalPrefix && s.startsWith(o.nationalPrefix)) {
    if (!o.countryCode)
      throw new InvalidNumberError(
        `bnum: "${raw}" is a national number but the account has no country calling code (set tb_users.country or ` +
          `defaultcountrycode)`,
      );
    out = o.countryCode + s.slice(o.nationalPrefix.length);
  } else {
    out = s;
  }
  if (!/^\d+$/.test(out))
    throw new InvalidNumberError(`bnum: "${raw}" is not a phone number (digits with an optional +, 00 or 0 prefix)`);
  if (out.length < 2 || out.length > 20)
    throw new InvalidNumberError(`bnum: "${raw}" has ${out.length} digits after normalisation (expected 2-20)`);
  if (out.startsWith('0'))
    throw new InvalidNumberError(`bnum: "${raw}" does not start with a country code after normalisation`);
  return out;
}
