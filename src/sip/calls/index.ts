/**
 * The call layer (issue 5): B2BUA over the SIP server. Wiring (src/server.ts, after `sip.start()`):
 *
 *   const calls = attachCalls(services, sip, stack);   // takes INVITE/BYE/CANCEL + ACKs, starts the live-call refresh
 *   await calls.recover();                             // bills the calls a crash left in tb_livecalls
 *   …on stop, before sip.stop(): await calls.stop();   // BYE + CDR for calls still up
 */
import type { DomainServices } from '../../domain/deps.js';
import type { SipServer, SipStackLike } from '../server.js';
import { routingFor } from '../../domain/routing/service.js';
import { B2bua, type B2buaOptions, type Router } from './b2bua.js';

export { B2bua, digestAnswer } from './b2bua.js';
export type { B2buaOptions, Router } from './b2bua.js';

/** Creates and starts the B2BUA. `stack` defaults to the stack the SipServer was built with. */
export function attachCalls(
  services: DomainServices,
  sip: SipServer,
  stack?: SipStackLike,
  router?: Router,
  opts?: B2buaOptions,
): B2bua {
  const st = stack ?? (sip as unknown as { stack: SipStackLike }).stack;
  const b = new B2bua(services, sip, st, router ?? routingFor(services), opts);
  b.start();
  return b;
}
