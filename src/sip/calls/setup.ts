/**
 * B2BUA call set-up: a new INVITE is authenticated (407 digest) or trusted (a gateway's inbound_ip), routed
 * (RoutingService with the caller's reserved credit), forwarded when the callee's rules say so, its credit reserved
 * (LiveCalls; who pays and the free on-net rate come from src/domain/calls/charging.ts), then the B legs are dialled:
 * every registered contact of the callee in parallel (first 2xx wins) or the gateways in failover order
 * (./failover.ts).
 */
import { generateCallId, generateTag, getHeader, uriUser, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import { incomingLeg } from '../dialog/uas.js';
import type { AuthUser, User } from '../../domain/accounts/users.js';
import type { Rate } from '../../domain/rating/rate.js';
import { freeRateFor, payerOf } from '../../domain/calls/charging.js';
import { dialogIdOf, type Call, type CallCore, type Leg } from './core.js';
import { inDialogHandler } from './indialog.js';
import { cancelLeg, endCall } from './teardown.js';
import { CallDialer } from './failover.js';
import { connectionFault } from '../../domain/errors.js';
import { trunkContactUser } from '../../domain/routing/gateways.js';
import { accessCall, callbackAccessCall, isAccessNumber, isCallbackAccessNumber } from './access.js';

const RETRY = { name: 'Retry-After', value: '5' };

export class CallSetup {
  readonly dialer: CallDialer;

  constructor(private readonly core: CallCore) {
    this.dialer = new CallDialer(core, (call, by, target) => this.forward(call, by, target));
  }

  /** A new INVITE (no To tag). */
  async onInvite(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const core = this.core;
    const c = req.core!;
    const tooSmall = core.timers.tooSmall(req);
    if (tooSmall) return core.respond(tx, req, 422, 'Session Interval Too Small', tooSmall);
    // the shared state (Redis) is away: no new call (calls in progress go on), the reason in the log
    const stateDown = core.services.state.unavailable();
    if (stateDown) {
      core.log.warn({ ip: src.ip, why: stateDown }, 'call refused (503): shared state unreachable');
      return core.respond(tx, req, 503, 'Service Unavailable (shared state unreachable)', [RETRY]);
    }
    // a request with credentials is a user's, even from a gateway's address; without, a gateway's inbound_ip is trusted
    const hasCreds =
      getHeader(req, 'Proxy-Authorization') !== undefined || getHeader(req, 'Authorization') !== undefined;
    const gw = hasCreds ? undefined : await core.router.gatewayForIp(src.ip).catch(() => undefined);
    let user: AuthUser | null = null;
    if (!gw) {
      user = await core.sip.authenticate(req, tx, src, true);
      if (!user) return;
    }
    // pin-less: the gateway vouches for the caller number; a CLI of an account makes the call that account's
    const pinless = gw ? await this.pinlessAccount(uriUser(c.from?.uri) ?? '', gw.name) : undefined;
    if (tx.cancelled) return core.respond(tx, req, 487, 'Request Terminated');
    let called = uriUser(req.ruri) ?? uriUser(c.to?.uri) ?? '';
    // a registered trunk's call to the Contact it registered: the number dialled is in To
    if (gw && called !== '' && called === trunkContactUser(gw)) called = uriUser(c.to?.uri) ?? called;
    // an access number: the IVR asks for a PIN (unless the caller is known) and the number, then it is routed
    let ivrUser: User | undefined;
    const localTag = generateTag();
    if (isCallbackAccessNumber(core, called))
      return callbackAccessCall(core, req, tx, src, uriUser(c.from?.uri) ?? '', localTag);
    if (isAccessNumber(core, called)) {
      const known = user ? await core.services.users.byId(user.id) : pinless;
      const r = await accessCall(core, req, tx, src, known, localTag, uriUser(c.from?.uri) ?? '');
      if (!r) return;
      [ivrUser, called] = [r.user, r.destination];
    }
    // a SIP user calling a conference room number joins it (src/sip/conference); other numbers are routed
    try {
      if (user && !ivrUser && (await core.conference.handle(req, tx, src, user, called))) return;
    } catch (e) {
      // the room look-up needs the database: when it does not answer, 503 with Retry-After as for any call
      const down = connectionFault(e);
      core.log.warn(
        { err: String((e as Error)?.message ?? e), why: down },
        'call refused: the conference look-up failed',
      );
      return core.respond(tx, req, down ? 503 : 500, down ? 'Service Unavailable' : 'Server Internal Error', [RETRY]);
    }
    const callerName = ivrUser?.username ?? user?.username ?? uriUser(c.from?.uri) ?? '';
    const id = generateCallId();
    const a: Leg = incomingLeg(req, src, localTag);
    const call: Call = {
      id,
      payer: payerOf({ caller: ivrUser?.id ?? user?.id ?? pinless?.id }),
      callerName,
      calleeName: called,
      parties: user ? [user.username] : [],
      aReq: req,
      aTx: tx,
      aSrc: src,
      a,
      forks: [],
      state: 'routing',
      users: { a: (ivrUser ?? user ?? pinless)?.username },
    };
    core.byCallId.set(a.callId, { call, side: 'a' });
    core.dialogs.add(dialogIdOf(a), inDialogHandler(core, call, 'a'));
    if (core.callLog.isLevelEnabled('info'))
      core.callLog.info({ callid: id, caller: callerName, callee: called, src: `${src.ip}:${src.port}` }, 'call setup');
    try {
      await this.routeAndDial(call, called, ivrUser ?? user ?? pinless, src.ip);
    } catch (e) {
      // the database does not answer: 503 with Retry-After (the call may be tried again), the cause in the log
      const down = connectionFault(e);
      if (down) core.log.error({ callid: id, why: down }, 'call refused (503): the database does not answer');
      else core.log.warn({ err: String((e as Error)?.message ?? e), callid: id }, 'call setup failed');
      if (call.state !== 'ended') {
        if (down) core.respond(tx, req, 503, 'Service Unavailable', [RETRY], undefined, a.localTag);
        else core.respond(tx, req, 500, 'Server Internal Error', [], undefined, a.localTag);
        await endCall(core, call, 'setup failed', false);
      }
    }
  }

  /** The enabled account whose pin-less caller number (cli) this is, when the option allows pin-less calls. */
  private async pinlessAccount(callerNumber: string, gateway: string): Promise<User | undefined> {
    const core = this.core;
    if (core.services.config.get('pinless') === 'off' || !/^\+?\d{3,32}$/.test(callerNumber)) return undefined;
    const id = await core.services.numbers.cliOwner(callerNumber);
    const user = id === undefined ? undefined : await core.services.users.byId(id);
    if (!user?.enabled) return undefined;
    core.log.info({ cli: callerNumber, user: user.username, gateway }, 'pin-less call: the caller number is a CLI');
    return user;
  }

  private async routeAndDial(
    call: Call,
    called: string,
    user: User | undefined,
    fromIp: string,
    forwardedBy?: User,
  ): Promise<void> {
    const core = this.core;
    const live = core.live;
    const payer = forwardedBy ?? user;
    call.payer = payerOf({ forwarder: forwardedBy?.id, caller: user?.id ?? (call.payer || undefined) });
    const d = await core.router.route({
      caller: call.callerName,
      called,
      fromIp,
      user: payer,
      reservedCredit: payer ? live.reservedFor(payer.id) : 0,
    });
    if (call.state === 'ended') return;
    if (d.kind === 'reject') {
      live.countAttempt();
      await live.recordRefusal(
        { callid: call.id, userId: call.payer, caller: call.callerName, callee: called, route: 'rejected' },
        `${d.status} ${d.reason}`,
      );
      return this.fail(call, d.status, d.reason, `${d.status} ${d.reason}`, true);
    }
    if (d.kind === 'user') {
      const callee = d.user;
      const fwd = d.forward ?? {};
      if (fwd.always && !call.forwarded) return this.forward(call, callee, fwd.always);
      // a call from a gateway to a DID: the called user's (free) call
      call.payer = payerOf({ caller: call.payer, calledUser: callee.id });
      if (!call.parties.includes(callee.username)) call.parties.push(callee.username);
      call.calleeName = callee.username;
      call.users = { ...call.users, b: callee.username };
      call.busyFwd = call.forwarded ? undefined : fwd.busy;
      call.noAnswerFwd = call.forwarded ? undefined : fwd.noanswer;
      call.forwarder = callee;
      const bindings = core.sip.location.lookup(callee.username);
      if (!bindings.length) {
        if (call.noAnswerFwd) return this.forward(call, callee, call.noAnswerFwd);
        live.countAttempt();
        await live.recordRefusal(
          {
            callid: call.id,
            userId: call.payer,
            caller: call.callerName,
            callee: callee.username,
            route: `user:${callee.username}`,
            rate: await freeRateFor(core.services.ledger, call.payer),
          },
          'callee offline',
        );
        return this.fail(call, 480, 'Temporarily Unavailable', 'callee offline', true);
      }
      const free = await freeRateFor(core.services.ledger, call.payer);
      if (!(await this.reserve(call, callee.username, `user:${callee.username}`, free))) return;
      const contacts = bindings.map((b) => ({ contact: b.contact, srcIp: b.srcIp }));
      await core.media.prepare(call, call.aReq, call.aSrc, contacts); // RTP relay
      if (call.state !== 'calling') return;
      core.setState(call, 3);
      this.dialer.dialUser(call, callee.username, bindings);
      if (call.noAnswerFwd) {
        const target = call.noAnswerFwd;
        call.noAnswer = setTimeout(() => {
          if (call.state !== 'calling' || call.b) return;
          for (const f of call.forks) cancelLeg(core, f);
          call.forks = [];
          void this.forward(call, callee, target).catch(() => undefined);
        }, core.o.noAnswerSeconds * 1000);
        call.noAnswer.unref();
      }
      return;
    }
    // gateways
    if (!call.payer) return this.fail(call, 403, 'Forbidden', 'no paying account', true);
    if (!(await this.reserve(call, d.number, forwardedBy ? `fwd:${forwardedBy.username}` : 'gateway', d.rate))) return;
    await core.media.prepare(call, call.aReq, call.aSrc); // RTP relay
    if (call.state !== 'calling') return;
    core.setState(call, 3);
    this.dialer.dialGateways(call, d.candidates);
  }

  /** Forwards a call: a new call billed to the forwarding user (one level only). */
  private async forward(call: Call, by: User, target: string): Promise<void> {
    const core = this.core;
    call.forwarded = true;
    if (call.noAnswer) clearTimeout(call.noAnswer);
    // a running reservation (busy / no answer) is released; the forwarded leg gets its own, on the forwarder's account
    if (core.live.get(call.id)) await core.live.finish(call.id, '', { reason: `forwarded to ${target}` });
    call.id = generateCallId();
    core.setState(call, null);
    call.parties = call.parties.filter((p) => p !== by.username);
    call.users = { a: call.users?.a }; // the B side is whoever the forwarded leg reaches
    call.state = 'routing';
    return this.routeAndDial(call, target, undefined, '', by);
  }

  private async reserve(call: Call, callee: string, route: string, rate: Rate | undefined): Promise<boolean> {
    const core = this.core;
    const r = await core.live.reserve({
      callid: call.id,
      userId: call.payer,
      caller: call.callerName,
      callee,
      route,
      rate,
      parties: call.parties,
    });
    if (call.state === 'ended') {
      if (r.ok) await core.live.finish(call.id, '', { reason: 'cancelled' });
      return false;
    }
    if (!r.ok) {
      this.fail(call, r.status, r.status === 402 ? 'Payment Required' : r.reason, r.reason, false);
      return false;
    }
    core.live.onHangup(call.id, '', (reason) => void endCall(core, call, reason, true));
    call.state = 'calling';
    return true;
  }

  /** Final failure towards A (no CDR here: the caller wrote it or will by finish). */
  private fail(call: Call, status: number, reason: string, cdrReason: string, refused: boolean): void {
    this.core.respond(call.aTx, call.aReq, status, reason, [], undefined, call.a.localTag);
    void endCall(this.core, call, cdrReason, false, refused);
  }
}
