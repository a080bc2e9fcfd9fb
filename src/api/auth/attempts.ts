/**
 * Attempts per key within the last hour (public sign-ups per source address, wrong forgotten-password answers
 * per e-mail). One instance per purpose and server, built by the composition root; memory only.
 */
const HOUR = 3_600_000;
/** Above this many keys the log is dropped whole rather than grow without bound. */
const MAX_KEYS = 100_000;

export class HourlyAttempts {
  private readonly byKey = new Map<string, number[]>();

  /** Timestamps of `key` within the last hour (older ones are pruned). */
  recent(key: string, now = Date.now()): number[] {
    const list = (this.byKey.get(key) ?? []).filter((t) => now - t < HOUR);
    if (list.length) this.byKey.set(key, list);
    else this.byKey.delete(key);
    return list;
  }

  remember(key: string, now = Date.now()): void {
    if (this.byKey.size > MAX_KEYS) this.byKey.clear();
    const list = this.recent(key, now);
    list.push(now);
    this.byKey.set(key, list);
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  /** Minutes until the oldest of `list` leaves the hour (at least 1). */
  static minutesUntilFree(list: number[], now = Date.now()): number {
    const oldest = Math.min(...list);
    return Math.max(1, Math.ceil((oldest + HOUR - now) / 60_000));
  }
}
