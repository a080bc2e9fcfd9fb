/** The numbers module's shared parts: its refusal type, row shapes, limits and the stored form of a number. */
import { DomainError } from '../errors.js';

/** Bad input or a refused operation of the numbers service; the text says what was wrong (answered as ERROR). */
export class NumberServiceError extends DomainError {
  constructor(message: string, legacyStatus = 412) {
    super(message, legacyStatus === 404 ? 'notfound' : 'input', { legacyStatus });
  }
}

export type PoolStatus = 'free' | 'locked' | 'assigned';

export interface PoolNumber {
  number: string;
  /** Effective status (a lock that has expired reads as free). */
  status: PoolStatus;
  userid: number;
  username: string;
  lockedUntil: number | null;
  createdAt: number;
}

export interface OwnedNumber {
  number: string;
  createdAt: number;
}

export type ForwardTarget = { kind: 'user'; username: string; userId: number } | { kind: 'number'; number: string };

/** The forwarding rules of one user as the SIP core applies them (null: no rule). */
export interface ForwardRules {
  always: ForwardTarget | null;
  busy: ForwardTarget | null;
  noanswer: ForwardTarget | null;
}

/** The stored rule values ('' = none). */
export interface ForwardSettings {
  always: string;
  busy: string;
  noanswer: string;
}

export type ForwardKind = keyof ForwardSettings;

export const MAX_RANGE = 10_000;
export const MAX_CALLBACK_NUMBERS = 10;
export const MAX_CLI_NUMBERS = 100;
export const NUMBER_RE = /^[0-9]{2,20}$/;

/** Normalises a phone number: spaces and dashes removed, a leading + dropped; undefined when it is not 2-20 digits. */
export function phoneDigits(raw: string): string | undefined {
  const s = raw.trim().replace(/[\s-]/g, '');
  const digits = s.startsWith('+') ? s.slice(1) : s;
  return NUMBER_RE.test(digits) ? digits : undefined;
}

export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /unique|duplicate/i.test(String(err?.message ?? ''));
}

export interface NumberServiceOptions {
  /** Clock (epoch ms); tests inject one to move lock expiry without sleeping. */
  now?: () => number;
}
