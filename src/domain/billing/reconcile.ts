/**
 * Reconciliation: every balance must equal the sum of its ledger entries. `reconcile` checks all accounts once and
 * logs an error per mismatch; `startReconciliation` runs it on a timer (daily by default) until stopped.
 */
import type { Ledger, LedgerMismatch } from './ledger.js';

export interface ReconcileLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const DAY_MS = 86_400_000;

/** Compares each balance with its ledger; returns the mismatches (each one also logged as an error). */
export async function reconcile(ledger: Ledger, log: ReconcileLog): Promise<LedgerMismatch[]> {
  const mismatches = await ledger.audit();
  for (const m of mismatches) {
    log.error(
      { userId: m.userId, credit: m.credit, ledgerSum: m.ledgerSum, difference: m.credit - m.ledgerSum },
      'LEDGER MISMATCH: balance differs from the sum of its ledger entries',
    );
  }
  log.info({ mismatches: mismatches.length }, 'ledger reconciliation done');
  return mismatches;
}

/** Runs `reconcile` every `intervalMs` (the timer never keeps the process alive); returns the stop function. */
export function startReconciliation(ledger: Ledger, log: ReconcileLog, intervalMs = DAY_MS): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reconcile(ledger, log)
      .catch((e: unknown) => log.error({ err: String(e) }, 'ledger reconciliation failed'))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
