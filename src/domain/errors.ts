/**
 * The one error type that domain, SIP call control and API commands throw for a refusal the caller should read.
 * The API gateway maps it once (src/api/gateway.ts): the message becomes the ERROR text, `legacyStatus` the HTTP
 * status of the old API (xmapi) and of `httpstrictresponse`. `status` is the protocol-neutral status of the refusal
 * (the SIP/HTTP code family: 400 bad input, 402 credit short, 403 denied, 404 not found, 409 conflict, 503 unavailable)
 * that call control also answers with.
 */
export type ErrorKind = 'input' | 'denied' | 'notfound' | 'conflict' | 'insufficient' | 'unavailable' | 'config';

const STATUS: Record<ErrorKind, number> = {
  input: 400,
  insufficient: 402,
  denied: 403,
  notfound: 404,
  conflict: 409,
  unavailable: 503,
  config: 503,
};

export interface DomainErrorOptions {
  /** Overrides the status the kind implies. */
  status?: number;
  /** HTTP status of the old API and of httpstrictresponse answers (default 412, the document's "failed"). */
  legacyStatus?: number;
  /** The error this one reports (kept for the log, never shown to the caller). */
  cause?: unknown;
}

export class DomainError extends Error {
  readonly status: number;
  readonly legacyStatus: number;

  constructor(
    message: string,
    readonly kind: ErrorKind = 'input',
    o: DomainErrorOptions = {},
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = new.target.name;
    this.status = o.status ?? STATUS[kind];
    this.legacyStatus = o.legacyStatus ?? 412;
  }
}

/**
 * Why a storage error means the database does not answer (connection refused, reset or lost, a timeout), as a
 * short reason for the log and the refusal; null for every other error (a constraint, a bad statement, a refusal).
 */
export function connectionFault(e: unknown): string | null {
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  const msg = typeof err?.message === 'string' ? err.message : String(e);
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code))
    return `the database does not answer (${code})`;
  // PostgreSQL: class 08 (connection exception), 57P01-03 (shutting down, cannot connect now)
  if (/^08|^57P0[123]$/.test(code)) return `the database does not answer (${code}: ${msg})`;
  const lost = /Connection terminated|connection timeout|timeout exceeded when trying to connect|connection error/i;
  if (lost.test(msg)) return `the database does not answer (${msg})`;
  return null;
}
