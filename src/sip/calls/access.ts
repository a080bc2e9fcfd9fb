/**
 * Calls to an access number (option `accessnumber`): the IVR dialogue of src/sip/ivr/access.ts in early media, then
 * the call goes on as a call of the identified account to the number dialled by DTMF (routed, reserved and billed by
 * setup.ts like any call). A refused dialogue (timeouts, wrong PINs) ends the INVITE with its reason; nothing is
 * billed (no reservation was made). Wrong PINs count across calls per caller number and in all (PinGuard).
 */
import type { SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { User } from '../../domain/accounts/users.js';
import { earlyIvr } from '../ivr/early.js';
import { accessDialogue } from '../ivr/access.js';
import type { CallCore } from './core.js';

/** Whether `called` is one of the configured access numbers. */
export function isAccessNumber(core: CallCore, called: string): boolean {
  const list = core.services.config.options.accessnumber;
  if (!list || !called) return false;
  const bare = called.replace(/^\+/, '');
  return list.split(/[\s,;]+/).some((n) => n !== '' && n.replace(/^\+/, '') === bare);
}

/** Runs the dialogue; the account and destination to route, or undefined when the INVITE was answered here. */
export async function accessCall(
  core: CallCore,
  req: SipRequest,
  tx: ServerTransaction,
  src: SipSource,
  known: User | undefined,
  localTag: string,
  callerNumber: string,
): Promise<{ user: User; destination: string } | undefined> {
  const o = core.services.config.options;
  // PIN guessing across calls: a caller number (or everyone) past its limit is refused before the IVR answers
  const caller = callerNumber || `ip:${src.ip}`;
  const blocked = known ? undefined : await core.pinGuard.blocked(caller);
  if (blocked) {
    core.log.warn({ callid: req.core?.callId, caller, why: blocked }, 'access number call refused');
    core.respond(tx, req, 403, `Forbidden (${blocked})`, [], undefined, localTag);
    return undefined;
  }
  const out = await earlyIvr(core, req, tx, src, localTag, (ivr) =>
    accessDialogue(ivr, {
      known,
      byPin: (pin) => core.services.users.byPin(pin),
      hasCredit: async (u) =>
        ((await core.services.ledger.balance(u.id))?.credit ?? 0) - core.live.reservedFor(u.id) > 0,
      firstDigitMs: o.ivrtimeout * 1000,
      interDigitMs: o.ivrinterdigit * 1000,
      pinTries: o.ivrpintries,
      wrongPin: () => core.pinGuard.failed(caller),
    }),
  );
  if (out.kind !== 'done') return undefined;
  const d = out.value;
  if (d.kind === 'end') {
    core.log.info({ callid: req.core?.callId, cause: d.cause }, 'access number call ended by the IVR');
    if (d.status !== 487 || !tx.cancelled) core.respond(tx, req, d.status, d.reason, [], undefined, localTag);
    return undefined;
  }
  core.log.info(
    { callid: req.core?.callId, user: d.user.username, via: d.via, destination: d.destination },
    'access number call: routing the number dialled',
  );
  return { user: d.user, destination: d.destination };
}

/** Whether `called` is the callback access number (option callbackaccessnumber). */
export function isCallbackAccessNumber(core: CallCore, called: string): boolean {
  const n = core.services.config.options.callbackaccessnumber.replace(/^\+/, '');
  return n !== '' && called.replace(/^\+/, '') === n;
}

/**
 * A call to the callback access number: the caller's number (From) must be a callback number of one account
 * (addcallbacknumber), else 403. The IVR asks in early media for the number to call; then the INVITE is refused
 * (486 Busy Here: the caller's call is never answered, so it costs the caller nothing) and the server calls the caller
 * back and bridges to that number (CallControl 'callback', billed to the account). The INVITE is always answered here.
 */
export async function callbackAccessCall(
  core: CallCore,
  req: SipRequest,
  tx: ServerTransaction,
  src: SipSource,
  callerNumber: string,
  localTag: string,
): Promise<void> {
  const start = core.startCallback;
  if (!start) {
    core.respond(tx, req, 503, 'Service Unavailable (callback is not available here)', [], undefined, localTag);
    return;
  }
  const owner = await core.services.numbers.callbackNumberOwner(callerNumber);
  const user = owner === undefined ? undefined : await core.services.users.byId(owner);
  if (!user?.enabled) {
    core.log.info({ caller: callerNumber }, 'callback access number: the caller number is no callback number');
    core.respond(tx, req, 403, 'Forbidden (not a registered callback number)', [], undefined, localTag);
    return;
  }
  const o = core.services.config.options;
  const out = await earlyIvr(core, req, tx, src, localTag, (ivr) =>
    accessDialogue(ivr, {
      known: user,
      byPin: async () => undefined,
      firstDigitMs: o.ivrtimeout * 1000,
      interDigitMs: o.ivrinterdigit * 1000,
      pinTries: 1,
    }),
  );
  if (out.kind !== 'done') return;
  const d = out.value;
  if (d.kind === 'end') {
    if (d.status !== 487 || !tx.cancelled) core.respond(tx, req, d.status, d.reason, [], undefined, localTag);
    return;
  }
  core.respond(tx, req, 486, 'Busy Here (calling you back)', [], undefined, localTag);
  try {
    const callid = await start(user, callerNumber, d.destination);
    core.log.info(
      { user: user.username, caller: callerNumber, destination: d.destination, callid },
      'callback started',
    );
  } catch (e) {
    core.log.warn(
      { user: user.username, destination: d.destination, err: String((e as Error)?.message ?? e) },
      'callback access number: the callback could not start',
    );
  }
}
