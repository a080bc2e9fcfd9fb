/**
 * The access-number dialogue (calling-card style): who pays is the caller's account when it is known (a SIP user,
 * or a pin-less caller number); otherwise the caller is asked for the account's PIN (tb_users.pin; `ivrpintries`
 * tries). Then the destination is asked for: digits ended by `#`, or by `ivrinterdigit` seconds without a key.
 * No key for `ivrtimeout` seconds, only wrong PINs, or an account without credit end the call with a prompt and a
 * clear SIP reason; so does a wrong PIN that reaches the limits counted across calls (`wrongPin`).
 */
import type { User } from '../../domain/accounts/users.js';
import type { IvrMedia } from './session.js';

export type AccessDecision =
  | { kind: 'route'; user: User; destination: string; via: 'known' | 'pin' }
  | { kind: 'end'; status: number; reason: string; cause: string };

export interface AccessOptions {
  /** the account when the caller is already known */
  known?: User;
  byPin(pin: string): Promise<User | undefined>;
  /** whether the account has credit left for a call (else the `nocredit` prompt and 402) */
  hasCredit?(user: User): Promise<boolean>;
  firstDigitMs: number;
  interDigitMs: number;
  pinTries: number;
  /** Counts a wrong PIN across calls; the reason when no more PINs are taken (src/sip/ivr/pinguard.ts). */
  wrongPin?(): Promise<string | undefined>;
}

const end = (status: number, reason: string, cause: string): AccessDecision => ({ kind: 'end', status, reason, cause });

export async function accessDialogue(ivr: IvrMedia, o: AccessOptions): Promise<AccessDecision> {
  const collect = { firstDigitMs: o.firstDigitMs, interDigitMs: o.interDigitMs, maxDigits: 32 };
  let user = o.known;
  for (let i = 0; !user && i < o.pinTries; i++) {
    const r = await ivr.ask('enterpin', collect);
    if (r.kind === 'aborted') return end(487, 'Request Terminated', 'cancelled');
    if (r.kind === 'timeout' || !r.digits) {
      await ivr.say('goodbye');
      return end(408, 'Request Timeout (no PIN entered)', 'ivr: no PIN entered');
    }
    const found = await o.byPin(r.digits);
    if (found?.enabled) user = found;
    else {
      const stop = await o.wrongPin?.();
      if (stop) {
        await ivr.say('goodbye');
        return end(403, `Forbidden (${stop})`, `ivr: ${stop}`);
      }
      ivr.digits.clear();
      await ivr.say('wrongpin');
    }
  }
  if (!user) {
    await ivr.say('goodbye');
    return end(403, 'Forbidden (wrong PIN)', `ivr: wrong PIN ${o.pinTries} times`);
  }
  if (o.hasCredit && !(await o.hasCredit(user))) {
    await ivr.say('nocredit');
    await ivr.say('goodbye');
    return end(402, 'Payment Required (no credit left)', 'ivr: no credit');
  }
  const r = await ivr.ask('enternumber', collect);
  if (r.kind === 'aborted') return end(487, 'Request Terminated', 'cancelled');
  if (r.kind === 'timeout' || !/^\d{2,32}$/.test(r.digits.replace(/^\*/, ''))) {
    await ivr.say('goodbye');
    return end(
      r.kind === 'timeout' ? 408 : 484,
      r.kind === 'timeout' ? 'Request Timeout (no number entered)' : 'Address Incomplete',
      r.kind === 'timeout' ? 'ivr: no number entered' : 'ivr: invalid number entered',
    );
  }
  return { kind: 'route', user, destination: r.digits, via: o.known ? 'known' : 'pin' };
}
