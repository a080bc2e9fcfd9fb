/**
 * The call layer: the B2BUA over the SIP server. The composition root (src/server.ts) builds it after `sip.start()`:
 *
 *   const calls = new B2bua({ services, sip, router: routing, live: liveCalls });
 *   calls.start();            // takes new INVITEs; in-dialog requests reach it through sip.dialogs
 *   await calls.recover();    // bills the calls a crash left in tb_livecalls
 *   …on stop, before sip.stop(): await calls.stop();   // BYE + CDR for calls still up
 */
export { B2bua } from './b2bua.js';
export type { B2buaDeps, B2buaOptions, Router } from './b2bua.js';
