/** B2BUA teardown: ending a call (BYE / CANCEL what is up, state cleared, the one CDR written). */
import { cancelInvite, sendBye } from '../dialog/uac.js';
import { dialogIdOf, type Call, type CallCore, type Leg } from './core.js';

/** Sends BYE on a leg. */
export function bye(core: CallCore, leg: Leg): void {
  sendBye(core.stack, leg, core.log);
}

/** CANCELs a B leg still being tried. */
export function cancelLeg(core: CallCore, leg: Leg): void {
  if (leg.done) return;
  leg.done = true;
  cancelInvite(leg.ct);
  // the CANCELled INVITE's 487 is absorbed by the transaction; keep the mapping a little for a racing 2xx
  setTimeout(() => core.byCallId.delete(leg.callId), 32_000).unref();
}

/**
 * Ends a call: BYE to the legs still up (when `hangup`), CANCEL pending forks, state null, and the CDR (unless
 * `refused`: the refusal CDR is already written).
 */
export async function endCall(core: CallCore, call: Call, reason: string, hangup: boolean, refused = false) {
  if (call.state === 'ended') return;
  const wasConnected = call.state === 'connected';
  call.state = 'ended';
  core.timers.disarm(call.a);
  core.timers.disarm(call.b);
  if (call.noAnswer) clearTimeout(call.noAnswer);
  if (hangup) {
    if (wasConnected) {
      if (call.b) bye(core, call.b);
      bye(core, call.a);
    } else {
      core.respond(call.aTx, call.aReq, 480, reason, [], undefined, call.a.localTag);
    }
  }
  for (const f of call.forks) if (f !== call.b) cancelLeg(core, f);
  core.setState(call, null);
  core.media.release(call); // RTP relay: free the ports
  core.byCallId.delete(call.a.callId);
  core.dialogs.remove(dialogIdOf(call.a));
  if (call.b) {
    core.byCallId.delete(call.b.callId);
    core.dialogs.remove(dialogIdOf(call.b));
  }
  if (core.callLog.isLevelEnabled('info'))
    core.callLog.info({ callid: call.id, connected: wasConnected, cause: reason }, 'call ended');
  if (!refused || core.live.get(call.id)) await core.live.finish(call.id, '', { reason });
}
