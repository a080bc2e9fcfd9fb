/**
 * E-mail input rules: addresses (a plain addr-spec, ASCII), the from-address rules (smtpallowfrom), and the
 * refusal of header injection (CR, LF or NUL in anything that becomes a header).
 */
import { DomainError } from '../errors.js';

const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN = /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
/** The most recipients one sendmail may name. */
export const MAX_RECIPIENTS = 20;

/** CR, LF or NUL in a header value: refused, never folded or stripped. */
export function refuseHeaderInjection(field: string, v: string): void {
  if (/[\r\n\0]/.test(v)) throw new DomainError(`${field}: line breaks are not allowed (header injection refused)`);
}

export function isAddress(a: string): boolean {
  const at = a.lastIndexOf('@');
  if (at < 1 || a.length > 254) return false;
  const local = a.slice(0, at);
  const domain = a.slice(at + 1);
  return local.length <= 64 && LOCAL.test(local) && DOMAIN.test(domain);
}

export function checkAddress(field: string, raw: string): string {
  refuseHeaderInjection(field, raw);
  const a = raw.trim();
  if (!a) throw new DomainError(`${field}: missing`);
  if (!isAddress(a)) throw new DomainError(`${field}: "${a.slice(0, 80)}" is not an e-mail address (name@domain.tld)`);
  return a;
}

/** One or more addresses separated by commas or semicolons. */
export function checkRecipients(field: string, raw: string): string[] {
  refuseHeaderInjection(field, raw);
  const list = raw
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (!list.length) throw new DomainError(`${field}: missing`);
  if (list.length > MAX_RECIPIENTS) throw new DomainError(`${field}: at most ${MAX_RECIPIENTS} recipients`);
  return list.map((a) => checkAddress(field, a));
}

export interface FromPolicy {
  /** smtpallowfrom entries: own, default, any, @domain, or an address (lower case). */
  rules: readonly string[];
  /** smtpfrom */
  defaultFrom: string;
}

/** The from-addresses a user (not an admin) may use, in words, for the refusal. */
function describe(p: FromPolicy, own: string): string {
  const out: string[] = [];
  for (const r of p.rules) {
    if (r === 'own') out.push(own ? `your account e-mail (${own})` : 'your account e-mail (none set)');
    else if (r === 'default') out.push(p.defaultFrom ? `the default sender ${p.defaultFrom}` : 'the default sender');
    else if (r.startsWith('@')) out.push(`addresses at ${r.slice(1)}`);
    else if (r !== 'any') out.push(r);
  }
  return out.join(', ') || 'none (smtpallowfrom is empty)';
}

/**
 * The from-address of a message: the given one (checked against the rules unless `admin`), else smtpfrom, else
 * the account's own e-mail.
 */
export function chooseFrom(p: FromPolicy, given: string, ownEmail: string, admin: boolean): string {
  refuseHeaderInjection('from', given);
  const g = given.trim();
  if (!g) {
    const d = p.defaultFrom || ownEmail;
    if (!d) throw new DomainError('from: missing, and no default sender is set (option smtpfrom)', 'config');
    return checkAddress('from', d);
  }
  const from = checkAddress('from', g);
  if (admin) return from;
  const low = from.toLowerCase();
  const allowed = p.rules.some(
    (r) =>
      r === 'any' ||
      (r === 'own' && ownEmail !== '' && ownEmail.toLowerCase() === low) ||
      (r === 'default' && p.defaultFrom !== '' && p.defaultFrom.toLowerCase() === low) ||
      (r.startsWith('@') && low.endsWith(r)) ||
      r === low,
  );
  if (!allowed) throw new DomainError(`from: you may not send as ${from}; allowed: ${describe(p, ownEmail)}`, 'denied');
  return from;
}
