/** Expires and q values of REGISTER, PUBLISH and SUBSCRIBE requests. */
import { getHeader, getParam, parseDeltaSeconds, type SipRequest } from '../message/index.js';

/** The Expires header value in seconds; undefined when absent, -1 when malformed. */
export function expiresHeader(req: SipRequest): number | undefined {
  const v = getHeader(req, 'Expires');
  if (v === undefined) return undefined;
  return parseDeltaSeconds(v.trim());
}

/** `expires` parameter of a Contact value; undefined when absent, -1 when malformed. */
export function expiresParam(params: Parameters<typeof getParam>[0]): number | undefined {
  const v = getParam(params, 'expires');
  if (v === undefined) return undefined;
  if (v === null) return -1;
  return parseDeltaSeconds(v);
}

/** q parameter (0..1, default 1); NaN when malformed. */
export function qParam(params: Parameters<typeof getParam>[0]): number {
  const v = getParam(params, 'q');
  if (v === undefined) return 1;
  if (v === null || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) return NaN;
  return Number(v);
}
