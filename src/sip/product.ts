/**
 * What every answer of ours carries: the product token of the Server and User-Agent headers — `voxswitch`, or
 * `voxswitch/VERSION` when the operator asks for it (sipshowversion=true; scanners read exact versions to pick their
 * exploits, so the default hides it) — and the one way the SIP services and the B2BUA build and send a response.
 */
import { createResponse, type SipHeader, type SipRequest } from './message/index.js';
import type { ServerTransaction } from './stack.js';
import { fastTag } from './services/digest.js';
import type { DomainServices } from '../domain/deps.js';

export function productToken(s: Pick<DomainServices, 'config' | 'version'>): string {
  return s.config.options.sipshowversion ? `voxswitch/${s.version}` : 'voxswitch';
}

/** How a call layer answers a request (CallCore.respond): what the IVR and the conference take from their host. */
export type Respond = (
  tx: ServerTransaction,
  req: SipRequest,
  status: number,
  reason?: string,
  headers?: SipHeader[],
  body?: { type: string; data: Buffer },
  toTag?: string,
) => void;

/** Answers `req` on `tx` with our Server header (and a fresh To tag unless one is given). */
export function respondTo(
  s: Pick<DomainServices, 'config' | 'version'>,
  tx: ServerTransaction,
  req: SipRequest,
  status: number,
  reason?: string,
  headers: SipHeader[] = [],
  body?: { type: string; data: Buffer },
  toTag?: string,
): void {
  tx.respond(
    createResponse(req, status, reason, {
      headers: [{ name: 'Server', value: productToken(s) }, ...headers],
      body: body?.data,
      contentType: body?.type,
      toTag: toTag ?? fastTag(),
    }),
  );
}
