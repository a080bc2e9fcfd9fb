/** The plain shapes that travel through the API: a decoded request in, a result out. */
import { DomainError } from '../domain/errors.js';

export const FORMATS = ['text', 'cleartext', 'html', 'xml', 'soap', 'json', 'jsonp'] as const;
export type Format = (typeof FORMATS)[number];

export type TransportKind = 'http' | 'https' | 'ws' | 'wss' | 'tcp' | 'tls' | 'udp' | 'sip' | 'sms' | 'console';

export interface Source {
  transport: TransportKind;
  ip: string;
  port: number;
  /** The request came from a web page (Origin/Referer/Sec-Fetch headers, or a Host that is not ours). */
  browser: boolean;
}

export interface ApiRequest {
  /** Command name, lower case ('' when none was given). */
  entry: string;
  /** Named parameters, keys lower case, values decoded (URI-decoding, oenc1_ decryption done). */
  params: Record<string, string>;
  /**
   * Function parameters given as param1…paramN (after the function name/key/user/password when those came
   * positionally).
   */
  positional: string[];
  /** Explicit `format`, else the format guessed from the request. */
  format: Format;
  /** JSONP callback name (validated). */
  callback?: string;
  /** An old-API (xmapi) request: plain `OK`/`ERROR:reason` answers and the old HTTP codes. */
  legacy?: boolean;
  source: Source;
}

export interface ApiResult {
  ok: boolean;
  /** 200 success, 499 failure. */
  code: number;
  /** The answer's text (without the OK/ERROR suffix). */
  text: string;
  /** Named values of the answer (balance: credit, currency, …). */
  fields?: Record<string, string | number>;
  /** A tabular answer. */
  columns?: string[];
  rows?: Array<Record<string, unknown>>;
  /** HTTP status for old-API strict responses (403, 404, 406, 412, 420, 421). */
  legacyStatus?: number;
  /**
   * Text formats answer on one line, `OK: text` / `ERROR: text`, without rows (the shape the document gives for
   * presence_get and presence_set); the richer formats are unchanged.
   */
  oneLine?: boolean;
  /** Close the connection after answering (close/exit/quit). */
  close?: boolean;
}

export function ok(text: string, extra: Partial<ApiResult> = {}): ApiResult {
  return { ok: true, code: 200, text, ...extra };
}

export function fail(text: string, extra: Partial<ApiResult> = {}): ApiResult {
  return { ok: false, code: 499, text, ...extra };
}

/**
 * A refusal an API command throws to answer ERROR with this text and old-API status; the gateway maps it like
 * every DomainError.
 */
export class ApiError extends DomainError {
  constructor(message: string, legacyStatus = 412) {
    super(message, legacyStatus === 403 ? 'denied' : legacyStatus === 404 ? 'notfound' : 'input', { legacyStatus });
  }
}
