/** Used authsalt values (per authid) within a window: an authmd5 with a salt already seen is a replay. */
export class SaltStore {
  private seen = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private windowMs: number,
    private readonly now = () => Date.now(),
  ) {}

  setWindow(ms: number): void {
    this.windowMs = ms;
  }

  /** Records the salt; false when it was already used within the window. */
  use(authid: string, salt: string): boolean {
    const t = this.now();
    if (t - this.lastSweep > 10_000 || this.seen.size > 500_000) this.sweep(t);
    const key = `${authid}\u0000${salt}`;
    const at = this.seen.get(key);
    if (at !== undefined && t - at < this.windowMs) return false;
    this.seen.set(key, t);
    return true;
  }

  private sweep(t: number): void {
    this.lastSweep = t;
    for (const [k, at] of this.seen) if (t - at >= this.windowMs) this.seen.delete(k);
  }
}
