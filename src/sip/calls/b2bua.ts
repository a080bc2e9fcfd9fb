/**
 * Back-to-back user agent: every call is two dialogs — A (caller ↔ server) and B (server ↔ callee) — with their own
 * Call-IDs, tags and CSeqs. The server stays in the signalling path so it can end either leg, enforce maxduration
 * and keep its own record. Media go end to end by default (SDP unchanged); the optional RTP relay (src/sip/media,
 * option rtprelay) rewrites it at the lines marked "RTP relay".
 *
 * The phases, one module each: set-up (./setup.ts: authentication, routing, forwarding, reservation), B legs and
 * failover (./failover.ts), in-dialog requests (./indialog.ts: ACK, BYE, CANCEL, re-INVITE passthrough, reached
 * through the SIP server's dialog table) and teardown (./teardown.ts: BYE both legs, the one CDR through
 * LiveCalls.finish, charged once).
 *
 * Billing (src/domain/calls/charging.ts): the caller pays; a call from a gateway to a DID is the called user's (a
 * free on-net call); on-net user-to-user calls are free (a zero rate in the payer's currency; CDR reason
 * "normal …"). Forwarding (callforward): `always` before ringing, `busy` when every device answered 486/600,
 * `noanswer` after `noAnswerSeconds` of ringing or when the user has no registered device. The forwarded leg is a
 * new call billed to the FORWARDING user at their rate (route "gw:<name> fwd:<user>" or "user:<name>"); the
 * caller's first attempt is closed with a CDR of cost 0 and reason "forwarded to <target>". One level only.
 *
 * Timers: a B leg without any response for `legTimeoutMs` (5 s) fails over / fails with 408; ringing longer than
 * `ringTimeoutSeconds` (120 s) → 408. A caller that vanishes (no BYE) is covered by the max call age: every call's
 * maxduration is capped at LiveCalls.maxCallSeconds (default 2 h) and it is then ended with BYE on both legs (CDR
 * reason "max call age reached"); a caller that never ACKs our 200 is ended after 32 s. RFC 4028 session timers
 * (./sessiontimer.ts, options sessionexpires/minse) end a call whose leg is not refreshed: BYE both legs, CDR reason
 * "session timer expired". The RTP relay's RTP timeout ends a call whose media stopped (CDR reason "rtp timeout").
 *
 * Transfer (./transfer.ts): a REFER from either party; blind (the new leg billed to the referrer) or attended
 * (Replaces: the transferee joined with the far party of the referrer's other call). The transferred call ends with
 * CDR reason "transferred to <target>" / "transferred (attended)"; transferee ↔ target is a new call with its CDR.
 */
import type { LiveCalls } from '../../domain/calls/livecalls.js';
import { CallCore, type B2buaDeps, type B2buaOptions } from './core.js';
import type { User } from '../../domain/accounts/users.js';
import { CallSetup } from './setup.js';
import { endCall } from './teardown.js';
import type { SessionTimers } from './sessiontimer.js';
import type { CallMedia } from '../media/index.js';
import type { Conference } from '../conference/service.js';
import type { CallMonitor } from '../monitor/service.js';

export type { B2buaDeps, B2buaOptions, Router } from './core.js';

export class B2bua {
  private readonly core: CallCore;
  private readonly setup: CallSetup;

  constructor(deps: B2buaDeps, opts: B2buaOptions = {}) {
    this.core = new CallCore(deps, opts);
    this.setup = new CallSetup(this.core);
  }

  get live(): LiveCalls {
    return this.core.live;
  }

  /** RFC 4028 session timers of the legs (options sessionexpires / minse) */
  get timers(): SessionTimers {
    return this.core.timers;
  }

  /** RTP relay (src/sip/media): per-call relay sessions, SDP rewriting, RTP timeout */
  get media(): CallMedia {
    return this.core.media;
  }

  /** How a callback is started (CallControl.start 'callback'), for the callback access number (option). */
  set startCallback(fn: ((user: User, anum: string, bnum: string) => Promise<string>) | undefined) {
    this.core.startCallback = fn;
  }

  /** Takes new INVITEs over (in-dialog requests reach the calls through the dialog table). */
  start(): void {
    this.core.sip.setCallHandler((req, tx, src) => this.setup.onInvite(req, tx, src));
    this.core.live.start();
  }

  /** Hangs up every call (server stop): BYE both legs, CDRs written. */
  async stop(): Promise<void> {
    this.core.sip.setCallHandler(undefined);
    await this.core.monitor.stop(); // BYE to the listeners first
    const calls = new Set([...this.core.byCallId.values()].map((x) => x.call));
    await Promise.allSettled([...calls].map((c) => endCall(this.core, c, 'server shutdown', true)));
    await this.core.conference.stop();
  }

  /** Closes the calls a crash left in tb_livecalls (billing them once). */
  recover(): Promise<{ closed: number; charged: number }> {
    return this.core.live.recover();
  }

  /** Live calls for `info`. */
  liveCalls(): Array<{
    callid: string;
    caller: string;
    callee: string;
    state: string;
    start: number;
    connect: number | null;
    maxduration: number;
    route: string;
  }> {
    return this.core.live.list().map((c) => ({
      callid: c.key,
      caller: c.caller,
      callee: c.callee,
      state: c.state,
      start: c.startAt,
      connect: c.connectAt,
      maxduration: c.maxduration,
      route: c.route,
    }));
  }

  /** Conference rooms (src/sip/conference): participants, the mixer worker. */
  get conference(): Conference {
    return this.core.conference;
  }

  /** Call listening (src/sip/monitor, voicehere). */
  get monitor(): CallMonitor {
    return this.core.monitor;
  }

  size(): number {
    return this.core.byCallId.size;
  }
}
