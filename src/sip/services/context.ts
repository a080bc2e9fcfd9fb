/**
 * What the SIP service handlers (registrar, presence, messaging, options) share: the domain services, the stack,
 * the location service, digest authentication, call states, the clock, and the answering and authentication
 * helpers. Built once by SipServer.
 */
import { getHeaders, uriHost, type SipHeader, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource, SipStackLike } from '../stack.js';
import type { DomainServices } from '../../domain/deps.js';
import type { AuthUser } from '../../domain/accounts/users.js';
import type { DigestAuth } from './digest.js';
import type { LocationStore } from './location.js';
import type { OfflineIms } from './imstore.js';
import type { CallStates } from './status.js';
import { respondTo } from '../product.js';

export class SipContext {
  /** in-flight work (IM deliveries, NOTIFYs) that stop() waits for a little */
  readonly pending = new Set<Promise<unknown>>();

  constructor(
    readonly services: DomainServices,
    readonly stack: SipStackLike,
    readonly location: LocationStore,
    readonly digest: DigestAuth,
    readonly ims: OfflineIms,
    readonly calls: CallStates,
    readonly now: () => number,
  ) {}

  get o() {
    return this.services.config.options;
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => undefined);
    return p;
  }

  /** The account a SIP username names (exact username, enabled), from the user cache. */
  async userFor(username: string): Promise<AuthUser | null> {
    if (!username) return null;
    const u = await this.services.users.forAuth(username);
    return u && u.username === username && u.enabled ? u : null;
  }

  respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    reason?: string,
    headers: SipHeader[] = [],
    body?: { type: string; data: Buffer },
    toTag?: string,
  ): void {
    respondTo(this.services, tx, req, status, reason, headers, body, toTag);
  }

  /** The realm / our domain for a request: sipdomain, else the host the request was sent to. */
  realm(req: SipRequest, src: SipSource): string {
    return this.o.sipdomain || uriHost(req.ruri) || src.localIp;
  }

  /**
   * Digest check. Answers the challenge (401/407) or the refusal (403: the same for an unknown user and a wrong
   * password; counted toward a ban) itself and returns null then; else the authenticated user.
   */
  async authenticate(req: SipRequest, tx: ServerTransaction, src: SipSource, proxy: boolean): Promise<AuthUser | null> {
    const realm = this.realm(req, src);
    const creds = [
      ...getHeaders(req, proxy ? 'Proxy-Authorization' : 'Authorization'),
      ...getHeaders(req, proxy ? 'Authorization' : 'Proxy-Authorization'),
    ];
    let user: AuthUser | null = null;
    const r = creds.length
      ? await this.digest.verify(creds, realm, req.method, req.uri, async (name) => {
          user = await this.userFor(name);
          return user?.password ?? null;
        })
      : ({ ok: false, why: 'missing', detail: '' } as const);
    if (r.ok && user) return user;
    if (!r.ok && r.why === 'bad') {
      this.services.log.info(
        { ip: src.ip, method: req.method, user: r.username, why: r.detail },
        'SIP authentication failed',
      );
      void this.services.bans.recordFailure(src.ip, 'SIP').catch(() => undefined);
      this.respond(tx, req, 403, 'Forbidden');
      return null;
    }
    if (!r.ok && r.why === 'unavailable') {
      this.services.log.warn({ ip: src.ip, method: req.method, why: r.detail }, 'SIP request refused');
      this.respond(tx, req, 503, 'Service Unavailable (shared state unreachable)', [
        { name: 'Retry-After', value: '5' },
      ]);
      return null;
    }
    const stale = !r.ok && r.why === 'stale';
    const name = proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    this.respond(
      tx,
      req,
      proxy ? 407 : 401,
      undefined,
      this.digest.challenges(realm, stale).map((value) => ({ name, value })),
    );
    return null;
  }
}
