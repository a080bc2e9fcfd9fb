/**
 * A conference room's PIN (getconfroom pin=…): before a caller joins a room that has one, the IVR asks for it in
 * early media on the port the caller will keep in the room (`confpin` prompt, `ivrpintries` tries, `ivrtimeout`);
 * wrong PINs or no key: the `goodbye` prompt and a refusal (403 / 408), the caller never joins.
 */
import { timingSafeEqual } from 'node:crypto';
import type { SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { Options } from '../../config/options.js';
import { earlyIvr, type EarlyIvrHost } from './early.js';

/** Constant-time comparison of a typed PIN with the room's. */
function samePin(typed: string, pin: string): boolean {
  const a = Buffer.from(typed.padEnd(32, '\0').slice(0, 32));
  const b = Buffer.from(pin.padEnd(32, '\0').slice(0, 32));
  return timingSafeEqual(a, b) && typed.length === pin.length;
}

/** True when the caller typed the PIN (the INVITE is still open); false when it was answered here. */
export async function roomPinGate(
  host: EarlyIvrHost,
  o: Pick<Options, 'ivrtimeout' | 'ivrinterdigit' | 'ivrpintries'>,
  req: SipRequest,
  tx: ServerTransaction,
  src: SipSource,
  localTag: string,
  pin: string,
  pair: { port: number; bindAddr: string; address: string },
): Promise<boolean> {
  const collect = { firstDigitMs: o.ivrtimeout * 1000, interDigitMs: o.ivrinterdigit * 1000, maxDigits: 16 };
  const out = await earlyIvr(
    host,
    req,
    tx,
    src,
    localTag,
    async (ivr): Promise<'ok' | 'timeout' | 'wrong' | 'aborted'> => {
      for (let i = 0; i < o.ivrpintries; i++) {
        const r = await ivr.ask('confpin', collect);
        if (r.kind === 'aborted') return 'aborted';
        if (r.kind === 'timeout') {
          await ivr.say('goodbye');
          return 'timeout';
        }
        if (samePin(r.digits, pin)) return 'ok';
        ivr.digits.clear();
        await ivr.say('wrongpin');
      }
      await ivr.say('goodbye');
      return 'wrong';
    },
    pair,
  );
  if (out.kind !== 'done') return false;
  if (out.value === 'ok') return true;
  if (out.value === 'timeout')
    host.respond(tx, req, 408, 'Request Timeout (no conference PIN entered)', [], undefined, localTag);
  else if (out.value === 'wrong')
    host.respond(tx, req, 403, 'Forbidden (wrong conference PIN)', [], undefined, localTag);
  else host.respond(tx, req, 487, 'Request Terminated', [], undefined, localTag);
  return false;
}
