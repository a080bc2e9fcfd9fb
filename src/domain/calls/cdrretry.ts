/**
 * CDRs of finished calls that the database did not take (it was unreachable): kept in this process and written
 * again every `intervalMs` until it answers, each then charged once (recordCall is idempotent on callid + leg, so a
 * CDR another node's recovery wrote meanwhile is not charged again) and its tb_livecalls row deleted. Until then the
 * row and the reservation stay in the database, so a crash of this process leaves the call to recovery as before.
 */
import type { CallInput, RecordedCall } from '../billing/cdrs.js';
import type { DomainServices } from '../deps.js';

interface Pending {
  input: CallInput;
  /** tb_livecalls key (callid or callid/leg) */
  key: string;
  tries: number;
}

export class CdrRetry {
  private readonly pending = new Map<string, Pending>();
  private timer?: NodeJS.Timeout;
  private running = false;
  /** Called with each CDR written on a retry. */
  onWritten?: (key: string, r: RecordedCall) => void;

  constructor(
    private readonly services: Pick<DomainServices, 'cdrs' | 'storage' | 'log'>,
    readonly intervalMs = 2000,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** tb_livecalls keys of the queued CDRs (their rows are refreshed like live calls', so no node bills them). */
  keys(): string[] {
    return [...this.pending.keys()];
  }

  /** Queues a CDR the database refused for `why` (logged once here). */
  add(key: string, input: CallInput, why: string): void {
    this.pending.set(key, { key, input, tries: 0 });
    this.services.log.error(
      { callid: key, why, queued: this.pending.size },
      'CDR of a finished call not written: the database does not answer; retried until it does',
    );
    this.arm();
  }

  private arm(): void {
    if (this.timer || !this.pending.size) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().finally(() => this.arm());
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Writes what it can now; stops at the first failure (the database is still away). Returns how many were written. */
  async flush(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let written = 0;
    try {
      for (const p of [...this.pending.values()]) {
        p.tries++;
        try {
          const r = await this.services.cdrs.recordCall(p.input);
          await this.services.storage.db.deleteFrom('tb_livecalls').where('callid', '=', p.key).execute();
          this.pending.delete(p.key);
          written++;
          this.services.log.warn(
            { callid: p.key, charged: r.charged, created: r.created, tries: p.tries },
            'CDR written after the database came back',
          );
          this.onWritten?.(p.key, r);
        } catch (e) {
          if (p.tries === 1 || p.tries % 30 === 0)
            this.services.log.warn({ callid: p.key, err: String(e), tries: p.tries }, 'CDR retry failed');
          break;
        }
      }
    } finally {
      this.running = false;
    }
    return written;
  }

  /** Stops retrying; what is left stays in tb_livecalls for recovery at the next start (or a surviving node). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size)
      this.services.log.warn({ left: this.pending.size }, 'CDRs not written at stop: left for recovery');
  }
}
