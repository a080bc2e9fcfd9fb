/** SMPP command_status values: their names (from the `smpp` package) and which are worth a retry. */
import smpp from 'smpp';

const NAMES = new Map<number, string>(Object.entries(smpp.errors).map(([name, code]) => [code, name]));

/** "ESME_RTHROTTLED (0x58)" style. */
export function statusName(code: number): string {
  const hex = `0x${code.toString(16).toUpperCase().padStart(2, '0')}`;
  const n = NAMES.get(code);
  return n ? `${n} (${hex})` : `status ${hex}`;
}

/**
 * Statuses after which the same message may be submitted again later or on another SMSC: throttled (0x58),
 * message queue full (0x14), system error (0x08), submit failed (0x45) and ESME_RX_T_APPN (0x64, a temporary
 * error of the SMSC's application). Every other status is permanent for that message.
 */
const TEMPORARY = new Set([0x08, 0x14, 0x45, 0x58, 0x64]);

export function isTemporary(code: number): boolean {
  return TEMPORARY.has(code);
}
