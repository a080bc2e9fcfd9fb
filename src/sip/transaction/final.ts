/** Waiting for the outcome of a client transaction. */
import type { SipResponse } from '../message/index.js';
import type { ClientTransaction } from './types.js';

/** Resolves with the final response of a client transaction, or null on timeout / transport error / safety timeout. */
export function finalResponse(ct: ClientTransaction, safetyMs = 40_000): Promise<SipResponse | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: SipResponse | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => finish(null), safetyMs);
    timer.unref();
    ct.on('final', (res: SipResponse) => finish(res));
    ct.on('timeout', () => finish(null));
    ct.on('transport-error', () => finish(null));
  });
}
