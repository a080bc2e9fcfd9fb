/**
 * Web console sessions in the state layer (`state.ttl('console')`: in this process, or Redis so every node and
 * worker sees them). The id is 32 random bytes given to the browser only; the store is keyed by its SHA-256, so a
 * store dump holds no usable id. A session ends after `consoleidle` seconds without a request or `consolesession`
 * seconds after its log-in, whichever comes first; log-out deletes it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TtlStore } from '../../state/kv.js';
import { safeEqual } from '../../domain/accounts/secrets.js';

export interface Session {
  userId: number;
  /** The CSRF token every POST of this session must carry (header x-csrf-token). */
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export interface SessionLimits {
  idleMs: number;
  absoluteMs: number;
}

/** A session is refreshed in the store at most this often (each request would otherwise write). */
const TOUCH_MS = 15_000;
const ID_RE = /^[A-Za-z0-9_-]{43}$/;

const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');

export class ConsoleSessions {
  constructor(
    private readonly store: TtlStore,
    private readonly limits: () => SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async create(userId: number): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = { userId, csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeen: t };
    await this.save(id, session);
    return { id, session };
  }

  /** The live session of an id, refreshed; undefined when unknown, idle too long or past its absolute limit. */
  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id || !ID_RE.test(id)) return undefined;
    const raw = await this.store.get(keyOf(id));
    if (!raw) return undefined;
    const session = JSON.parse(raw) as Session;
    const t = this.now();
    const { idleMs, absoluteMs } = this.limits();
    if (t - session.lastSeen > idleMs || t - session.createdAt > absoluteMs) {
      await this.store.delete(keyOf(id));
      return undefined;
    }
    if (t - session.lastSeen > TOUCH_MS) {
      session.lastSeen = t;
      await this.save(id, session);
    }
    return session;
  }

  /** Whether a request's CSRF token is this session's (constant-time). */
  csrfMatches(session: Session, token: string | undefined): boolean {
    return typeof token === 'string' && token.length > 0 && safeEqual(session.csrf, token);
  }

  async delete(id: string | undefined): Promise<void> {
    if (id && ID_RE.test(id)) await this.store.delete(keyOf(id));
  }

  private async save(id: string, s: Session): Promise<void> {
    const { idleMs, absoluteMs } = this.limits();
    const ttl = Math.max(1000, Math.min(idleMs, s.createdAt + absoluteMs - s.lastSeen));
    await this.store.set(keyOf(id), JSON.stringify(s), ttl);
  }
}
