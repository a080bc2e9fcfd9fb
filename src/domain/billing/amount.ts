/** Amounts: money is held as integer micro-units (1/1,000,000 of the currency); text is decimal. */
export const MICROS = 1_000_000;

/** Parses a decimal amount ("12.5", "-3", "0.000001"); undefined when it is not one or has more than 6 decimals. */
export function parseAmount(s: string): number | undefined {
  const t = s.trim();
  const m = /^([+-]?)(\d{1,12})(?:\.(\d{1,6}))?$/.exec(t);
  if (!m) return undefined;
  const micros = Number(m[2]) * MICROS + Number((m[3] ?? '').padEnd(6, '0'));
  return m[1] === '-' ? -micros : micros;
}

export function formatAmount(micros: number): string {
  const neg = micros < 0;
  const a = Math.abs(micros);
  const whole = Math.floor(a / MICROS);
  let frac = String(a % MICROS)
    .padStart(6, '0')
    .replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}
