/** The effective options as an operator may see them: secrets as ***, passwords inside URLs masked. */
import type { Options } from './options.js';

/** Options whose value is a secret (shown as *** when set). */
export const SECRET_OPTIONS: ReadonlySet<string> = new Set([
  'apiv2key',
  'httpapikey',
  'apiv2md5salt',
  'httpapiencryptkey',
  'cardprocessorkey',
  'smtppassword',
  'faxhttpauth',
]);

/** `scheme://user:password@host` → `scheme://user:***@host`; a secret-looking query value → ***. */
export function maskUrl(v: string): string {
  return v
    .replace(/\/\/([^:@/\s]*):[^@/\s]*@/g, '//$1:***@')
    .replace(/([?&](?:key|token|secret|password|pass|pwd|auth|apikey|api_key)=)[^&\s]*/gi, '$1***');
}

/** One option's value as text, masked where it is a secret. */
export function shownValue(name: string, v: unknown): string {
  const text = Array.isArray(v) ? v.join(',') : String(v);
  if (SECRET_OPTIONS.has(name)) return text ? '***' : '';
  return maskUrl(text);
}

export function maskedOptions(o: Options): Array<[name: string, value: string]> {
  return Object.entries(o).map(([k, v]) => [k, shownValue(k, v)]);
}
