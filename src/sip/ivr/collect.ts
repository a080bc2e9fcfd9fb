/**
 * Collecting a number typed on the keypad: digits until `#` (not part of the number), `maxDigits`, or no key for
 * `interDigitMs` after the first one (then what was typed is the number); nothing at all for `firstDigitMs` is a
 * timeout. One collection at a time per call.
 */

export type Collected = { kind: 'digits'; digits: string } | { kind: 'timeout' } | { kind: 'aborted' };

export interface CollectOptions {
  maxDigits: number;
  firstDigitMs: number;
  interDigitMs: number;
}

export class DigitCollector {
  private buf = '';
  private pending?: { resolve: (c: Collected) => void; o: CollectOptions; timer?: NodeJS.Timeout };
  /** digits typed while nothing was being collected (typed ahead during a prompt) */
  private ahead = '';

  /** A key press from the DtmfReceiver. */
  push(digit: string): void {
    const p = this.pending;
    if (!p) {
      if (this.ahead.length < 64) this.ahead += digit;
      return;
    }
    if (digit === '#') return this.finish({ kind: 'digits', digits: this.buf });
    this.buf += digit;
    if (this.buf.length >= p.o.maxDigits) return this.finish({ kind: 'digits', digits: this.buf });
    this.arm(p.o.interDigitMs);
  }

  /** Waits for a number; digits typed ahead (during the prompt) count. */
  collect(o: CollectOptions): Promise<Collected> {
    if (this.pending) this.finish({ kind: 'aborted' });
    this.buf = '';
    return new Promise<Collected>((resolve) => {
      this.pending = { resolve, o };
      const typed = this.ahead;
      this.ahead = '';
      this.arm(o.firstDigitMs);
      for (const d of typed) if (this.pending) this.push(d);
    });
  }

  /** Drops what was typed ahead (e.g. before asking again after a wrong PIN). */
  clear(): void {
    this.ahead = '';
  }

  /** Ends a running collection (the call ended). */
  abort(): void {
    if (this.pending) this.finish({ kind: 'aborted' });
  }

  private arm(ms: number): void {
    const p = this.pending!;
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => this.finish(this.buf ? { kind: 'digits', digits: this.buf } : { kind: 'timeout' }), ms);
  }

  private finish(c: Collected): void {
    const p = this.pending;
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    this.pending = undefined;
    this.buf = '';
    p.resolve(c);
  }
}
