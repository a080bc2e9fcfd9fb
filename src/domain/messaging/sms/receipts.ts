/**
 * Delivery receipts: the SMPP 3.4 appendix B text ("id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD
 * err:…") and the message_state TLV, to a final outcome (pure, unit-tested).
 */

export interface ParsedReceipt {
  id: string;
  stat: string;
  err: string;
}

export function parseReceipt(text: string): ParsedReceipt | undefined {
  const id = /(?:^|\s)id:(\S+)/i.exec(text)?.[1];
  if (!id) return undefined;
  return {
    id,
    stat: (/(?:^|\s)stat:(\S+)/i.exec(text)?.[1] ?? '').toUpperCase(),
    err: /(?:^|\s)err:(\S+)/i.exec(text)?.[1] ?? '',
  };
}

/** message_state values (SMPP 3.4 §5.2.28) that are final. */
const STATE_TLV: Record<number, { state: 'delivered' | 'failed'; text: string }> = {
  2: { state: 'delivered', text: 'DELIVERED' },
  3: { state: 'failed', text: 'EXPIRED' },
  4: { state: 'failed', text: 'DELETED' },
  5: { state: 'failed', text: 'UNDELIVERABLE' },
  8: { state: 'failed', text: 'REJECTED' },
};

const STAT_TEXT: Record<string, 'delivered' | 'failed'> = {
  DELIVRD: 'delivered',
  EXPIRED: 'failed',
  DELETED: 'failed',
  UNDELIV: 'failed',
  REJECTD: 'failed',
};

/** The final outcome of a receipt (the TLV first, then the text's stat), undefined for an intermediate one. */
export function receiptOutcome(
  messageState: number | undefined,
  stat: string | undefined,
): { state: 'delivered' | 'failed'; text: string } | undefined {
  if (messageState !== undefined && STATE_TLV[messageState]) return STATE_TLV[messageState];
  const s = (stat ?? '').toUpperCase();
  const st = STAT_TEXT[s];
  return st ? { state: st, text: s } : undefined;
}
