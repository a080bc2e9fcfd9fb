/**
 * Used authsalt values (per authid) within a window: an authmd5 with a salt already seen is a replay. In one
 * process a map; with shared state (Redis) a single-use token per salt (`state.once`), so a salt used on one node
 * is refused on every other.
 */
import { createHash } from 'node:crypto';
import type { OnceStore } from '../../state/index.js';

export class SaltStore {
  private seen = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private windowMs: number,
    private readonly now = () => Date.now(),
    /** Shared single-use tokens; undefined: the map of this process. */
    private readonly shared?: OnceStore,
  ) {}

  setWindow(ms: number): void {
    this.windowMs = ms;
  }

  /**
   * Records the salt; false when it was already used within the window. Rejects when the shared store does not
   * answer (the caller refuses the request: a salt that cannot be checked for replay is not accepted).
   */
  async use(authid: string, salt: string): Promise<boolean> {
    const key = `${authid}\u0000${salt}`;
    if (!this.shared) return this.useLocal(key);
    // fixed-length keys whatever the salt's length
    const digest = createHash('sha256').update(key, 'utf8').digest('base64url');
    return this.shared.claim(`salt:${digest}`, this.windowMs);
  }

  private useLocal(key: string): boolean {
    const t = this.now();
    if (t - this.lastSweep > 10_000 || this.seen.size > 500_000) this.sweep(t);
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
