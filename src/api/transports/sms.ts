/**
 * The API over SMS: an incoming SMS whose text starts with one of the document's SMS commands (balance, rating,
 * p2p, cb/callback, charge, cli) followed by the username, the password and the command's parameters, space
 * separated ("balance bob secret", "rating bob secret 3612345", "p2p bob secret 361111 362222"), runs through the
 * API gateway like any other transport (levels, limits, bans); the answer goes back by SMS. The API key is not
 * asked for (the SMSC is a gateway the operator configured); the account's password always is: the sender number
 * alone never identifies an account, as it can be forged.
 */
import type { ApiGateway } from '../gateway.js';
import type { ApiRequest } from '../types.js';

const COMMANDS: Record<string, string> = {
  balance: 'balance',
  rating: 'rating',
  p2p: 'p2p',
  cb: 'callback',
  callback: 'callback',
  charge: 'charge',
  cli: 'cli',
};

/** The source of every request over SMS (no address: failures count toward one ban entry of the transport). */
export const SMS_SOURCE = { transport: 'sms', ip: '0.0.0.0', port: 0, browser: false } as const;

/** The API request an SMS text carries, an ERROR text for a command word with too few words, or undefined. */
export function smsRequest(text: string, key: string): ApiRequest | string | undefined {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const entry = COMMANDS[(words[0] ?? '').toLowerCase()];
  if (!entry) return undefined;
  if (words.length < 3) return `ERROR: ${words[0]!.toLowerCase()} USERNAME PASSWORD [parameters]`;
  const params: Record<string, string> = { authid: words[1]!, authpwd: words[2]! };
  if (key) params.authkey = key;
  return { entry, params, positional: words.slice(3), format: 'text', source: { ...SMS_SOURCE } };
}

/** Runs an SMS command; the answer text (at most 300 characters) to send back, or undefined when it is none. */
export async function answerSms(gateway: ApiGateway, key: string, text: string): Promise<string | undefined> {
  const r = smsRequest(text, key);
  if (r === undefined) return undefined;
  if (typeof r === 'string') return r;
  const out = await gateway.handle(r);
  const body = out.ok ? out.text || 'OK' : `ERROR: ${out.text}`;
  return body.length > 300 ? body.slice(0, 297) + '...' : body;
}
