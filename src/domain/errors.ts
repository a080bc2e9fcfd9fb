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
