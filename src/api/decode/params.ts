/**
 * Turns raw key/value pairs (from any request format) into an ApiRequest: decryption (mcrfs, oenc1_),
 * the entry name, positional param1…paramN, format and JSONP callback.
 */
import { FORMATS, type ApiRequest, type Format, type Source } from '../types.js';
import { decryptValue } from './crypt.js';

export class DecodeError extends Error {}

/** Lenient percent-decoding: a malformed escape is kept as it is. */
export function decodeComponent(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** Parses `a=1&b=2` (a leading `?` allowed; `+` is a space); keys lower case; the first value of a key wins. */
export function parseQuery(qs: string, into: Record<string, string> = {}, plus = true): Record<string, string> {
  let s = qs;
  if (s.startsWith('?')) s = s.slice(1);
  if (!s) return into;
  for (const part of s.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    const key = decodeComponent(plus ? k.replace(/\+/g, ' ') : k)
      .trim()
      .toLowerCase();
    if (!key || key in into) continue;
    into[key] = decodeComponent(plus ? v.replace(/\+/g, ' ') : v);
  }
  return into;
}

const CALLBACK_RE = /^[A-Za-z_$][\w$]{0,63}(\.[A-Za-z_$][\w$]{0,63}){0,3}$/;
const MAX_POSITIONAL = 99;

export interface BuildOptions {
  source: Source;
  guessed: Format;
  encryptKey: string;
  /** Entry named by the URL path (/mvapireq/balance). */
  pathEntry?: string;
  /** Positional values in order (plain-text requests): function name, key, user, password, params. */
  tokens?: string[];
  legacy?: boolean;
  forceFormat?: Format;
}

export function buildRequest(raw: Record<string, string>, o: BuildOptions): ApiRequest {
  let params = raw;
  if (params.mcrfs !== undefined) {
    const plain = decryptValue(params.mcrfs, o.encryptKey);
    if (plain === undefined)
      throw new DecodeError(
        o.encryptKey
          ? 'mcrfs: cannot decrypt (Base64 of XOR with httpapiencryptkey expected)'
          : 'mcrfs: encrypted requests need the httpapiencryptkey option set',
      );
    const inner = plain.replace(/^.*?mvapireq\/?/, '');
    const pathEntry = /^([A-Za-z0-9_]+)\?/.exec(inner)?.[1];
    const q = inner.includes('?') ? inner.slice(inner.indexOf('?') + 1) : inner;
    const { mcrfs: _m, ...rest } = params;
    params = parseQuery(q, {}, true);
    for (const [k, v] of Object.entries(rest)) if (!(k in params)) params[k] = v;
    if (pathEntry && !params.apientry) params.apientry = pathEntry;
  }
  for (const [k, v] of Object.entries(params)) {
    if (v.startsWith('oenc1_')) {
      const plain = decryptValue(v.slice(6), o.encryptKey);
      if (plain === undefined)
        throw new DecodeError(
          `${k}: cannot decrypt the oenc1_ value${o.encryptKey ? '' : ' (httpapiencryptkey is not set)'}`,
        );
      params[k] = plain;
    }
  }

  const positional: string[] = [];
  for (let i = 1; i <= MAX_POSITIONAL; i++) {
    const v = params[`param${i}`];
    if (v === undefined) break;
    positional.push(v);
  }
  let entry = (params.apientry ?? params.entry ?? o.pathEntry ?? '').trim().toLowerCase();
  let fn = positional;
  const tokens = o.tokens;
  if (tokens && tokens.length) {
    fn = tokens.slice();
  } else if (!entry && positional.length) {
    fn = positional.slice();
  } else {
    fn = [];
  }
  if (fn.length) {
    // functionname, apikey, username, password, then the function's parameters
    entry = (fn[0] ?? '').trim().toLowerCase();
    if (fn[1] && params.authkey === undefined) params.authkey = fn[1];
    if (fn[2] && params.authid === undefined) params.authid = fn[2];
    if (fn[3] && params.authpwd === undefined && params.authmd5 === undefined) params.authpwd = fn[3];
    positional.splice(0, positional.length, ...fn.slice(4));
  }
  if (entry && !/^[a-z0-9_.-]{1,64}$/.test(entry)) throw new DecodeError('invalid API entry name');

  let format: Format = o.forceFormat ?? o.guessed;
  const f = params.format?.trim().toLowerCase();
  if (f && !o.forceFormat) {
    if (!(FORMATS as readonly string[]).includes(f))
      throw new DecodeError(`unknown format "${f}": use ${FORMATS.join(', ')}`);
    format = f as Format;
  }
  let callback: string | undefined;
  const cb = params.callback ?? params.jsoncallback ?? params.jsonp;
  if (cb !== undefined && cb !== '') {
    if (!CALLBACK_RE.test(cb)) throw new DecodeError('callback: not a valid JavaScript function name');
    callback = cb;
    if (!f && !o.forceFormat) format = 'jsonp';
  }
  if (format === 'jsonp' && !callback) callback = 'callback';
  return { entry, params, positional, format, callback, legacy: o.legacy, source: o.source };
}
