/** The value kinds of the option schemas: booleans, bounded integers, strings and lists, given as strings. */
import { z } from 'zod';

export const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true/false/1/0, got "${v}"` });
  return z.NEVER;
});

export const int = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });

export const oneOf = (...allowed: number[]) =>
  int(Math.min(...allowed), Math.max(...allowed)).refine((n) => allowed.includes(n), {
    message: `expected one of ${allowed.join(', ')}`,
  });

export const str = z.union([z.string(), z.number()]).transform((v) => String(v).trim());

/** Comma (or space) separated list of IPv4/IPv6 addresses or CIDR ranges. */
export const ipList = str.transform((v, ctx) => {
  const items = v.split(/[\s,;]+/).filter(Boolean);
  for (const it of items) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(it)) {
      ctx.addIssue({ code: 'custom', message: `"${it}" is not an IP address or CIDR range` });
      return z.NEVER;
    }
  }
  return items;
});

export const nameList = str.transform((v) =>
  v
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((s) => s.toLowerCase()),
);
