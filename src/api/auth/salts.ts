/**
 * Used authsalt values (per authid) within a window: an authmd5 with a salt already seen is a replay. In one
 * process a map; with shared state (Redis) a single-use token per salt (`state.once`), so a salt used on one node
 * is refused on every other.
 */
import { createHash } from 'node:crypto';
import { MemoryOnce, type OnceStore } from '../../state/once.js';

export class SaltStore {
  /** Single-use tokens: the shared store, or this process's own. */
  private readonly once: OnceStore;

  constructor(
    private windowMs: number,
    now = () => Date.now(),
    /** Shared single-use tokens; undefined: a map of this process. */
    private readonly shared?: OnceStore,
  ) {
    this.once = shared ?? new MemoryOnce(now);
  }

  setWindow(ms: number): void {
    this.windowMs = ms;
  }

  /**
   * Records the salt; false when it was already used within the window. Rejects when the shared store does not
   * answer (the caller refuses the request: a salt that cannot be checked for replay is not accepted).
   */
  async use(authid: string, salt: string): Promise<boolean> {
    const key = `${authid}\u0000${salt}`;
    // shared keys have a fixed length whatever the salt's length
    const id = this.shared ? `salt:${createHash('sha256').update(key, 'utf8').digest('base64url')}` : key;
    return this.once.claim(id, this.windowMs);
  }
}
