/**
 * Password rules for passwords users choose themselves (public sign-up, changepwd) and the random passwords
 * handed out by a forgotten-password reset. Admin-created accounts (newuseri) keep the basic validation of
 * UserService.create only.
 */
import { randomInt } from 'node:crypto';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/**
 * Why `password` is too weak for `username`, or undefined when it is acceptable. `field` names the parameter
 * in the message (u_password, newpassword).
 * Rules: 8-128 printable characters, not the username (ignoring case), not all digits, and letters together
 * with digits or symbols.
 */
export function passwordProblem(password: string, username: string, field: string): string | undefined {
  if (password.length < PASSWORD_MIN) return `${field}: at least ${PASSWORD_MIN} characters`;
  if (password.length > PASSWORD_MAX) return `${field}: at most ${PASSWORD_MAX} characters`;
  if (/[\x00-\x1f\x7f]/.test(password)) return `${field}: only printable characters`;
  if (username && password.toLowerCase() === username.toLowerCase()) return `${field}: must not be the username`;
  if (/^[0-9]+$/.test(password)) return `${field}: must not be all digits`;
  const letters = /\p{L}/u.test(password);
  const others = /[^\p{L}]/u.test(password);
  if (!letters || !others) return `${field}: needs letters and also digits or symbols`;
  return undefined;
}

const LOWER = 'abcdefghijkmnpqrstuvwxyz';
const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const DIGITS = '23456789';
const ALL = LOWER + UPPER + DIGITS;

/** A random password (no look-alike characters) that always passes passwordProblem: letters and digits. */
export function randomPassword(length = 14): string {
  const n = Math.max(PASSWORD_MIN, Math.min(PASSWORD_MAX, length));
  const chars = [LOWER[randomInt(LOWER.length)]!, UPPER[randomInt(UPPER.length)]!, DIGITS[randomInt(DIGITS.length)]!];
  while (chars.length < n) chars.push(ALL[randomInt(ALL.length)]!);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}

/** How a forgotten-password answer is compared: trimmed, inner white space collapsed, lower case. */
export function normalizeAnswer(answer: string): string {
  return answer.trim().replace(/\s+/g, ' ').toLowerCase();
}
