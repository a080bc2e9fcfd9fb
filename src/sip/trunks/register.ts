/**
 * One trunk's registration (RFC 3261 §10.2, client side): REGISTER to the gateway's host (resolved by RFC 3263,
 * the next hop on a timeout, a transport error or 503), a 401/407 answered with the gateway's credentials (the one
 * digest writer, services/digest.ts; again only for a stale nonce), 423 answered with the Min-Expires asked for.
 * Refreshed at 80 % of the expiry the registrar granted; a failure is retried after a back-off that doubles from
 * `retryMinMs` to `retryMaxMs`, each with jitter (½ to 1 of it), or after the registrar's Retry-After. One Call-ID
 * for the registration's life, CSeq increasing. `stop(true)` removes the binding (Expires: 0).
 */
import {
  generateCallId,
  generateTag,
  getHeader,
  escapeUser,
  uriHostPart,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import type { SipStackLike, SipTransport } from '../stack.js';
import { digestAnswer, parseDigestHeader } from '../services/digest.js';
import type { TrunkConfig } from '../../domain/routing/types.js';
import { ResolveError, type SipHop, type SipResolver } from './resolve.js';

export type TrunkStatus = 'registering' | 'registered' | 'failed' | 'unregistered' | 'standby';

/** What `gateways` shows of a registering gateway. */
export interface TrunkState {
  id: number;
  name: string;
  status: TrunkStatus;
  /** Why the last attempt failed ('' when it did not). */
  cause: string;
  /** Seconds the registrar granted (0: not registered). */
  expires: number;
  /** When the registration was last confirmed (ms since the epoch, 0 never). */
  registeredAt: number;
  /** When the next REGISTER goes out (ms since the epoch, 0 none planned). */
  nextTry: number;
  /** transport:address:port of the registrar that answered last ('' none). */
  registrar: string;
  /** Attempts failed in a row. */
  failures: number;
  /** The process that registers it (its lease). */
  owner: string;
}

export interface TrunkDeps {
  stack: Pick<SipStackLike, 'request' | 'localAddress'>;
  resolver: SipResolver;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void };
  /** The back-off bounds now (options trunkretry, trunkretrymax). */
  retry(): { minMs: number; maxMs: number };
  /** How long a REGISTER may go unanswered before the next hop (or a failure); default 8000 ms. */
  answerMs?: number;
  owner: string;
  /** The trunk's addresses, to trust its calls (RoutingService.trustAddresses). */
  trust(ips: string[]): void;
  /** Every change of the state. */
  changed(s: TrunkState): void;
  rng?: () => number;
  now?: () => number;
}

type Outcome = SipResponse | 'timeout' | 'transport-error';

/** Seconds granted by a 2xx to REGISTER: our Contact's expires, else Expires, else what was asked. */
export function grantedExpires(res: SipResponse, contactUri: string, asked: number): number {
  const ours = contactUri.toLowerCase();
  for (const c of res.core?.contact ?? []) {
    if (c.uri.raw.toLowerCase() !== ours) continue;
    const e = c.params.find((p) => p.name.toLowerCase() === 'expires')?.value;
    if (e && /^\d{1,10}$/.test(e)) return Number(e);
  }
  const h = getHeader(res, 'Expires')?.trim();
  return h && /^\d{1,10}$/.test(h) ? Number(h) : asked;
}

export class TrunkClient {
  readonly state: TrunkState;
  private readonly callId = generateCallId();
  private readonly fromTag = generateTag();
  private cseq = 0;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private readonly now: () => number;
  private readonly rng: () => number;

  constructor(
    readonly cfg: TrunkConfig,
    private readonly d: TrunkDeps,
  ) {
    this.now = d.now ?? Date.now;
    this.rng = d.rng ?? Math.random;
    this.state = {
      id: cfg.id,
      name: cfg.name,
      status: 'registering',
      cause: '',
      expires: 0,
      registeredAt: 0,
      nextTry: 0,
      registrar: '',
      failures: 0,
      owner: d.owner,
    };
  }

  /** Registers now (and keeps the registration up). */
  start(): void {
    this.plan(0);
  }

  /** Registers again now (gwrst); resolves with the state once that attempt ended. */
  async refresh(): Promise<TrunkState> {
    if (this.stopped) return this.state;
    await this.running;
    clearTimeout(this.timer);
    await this.run(this.cfg.expires);
    return this.state;
  }

  /** Ends the registration: no more refreshes; with `unregister`, the binding is removed (Expires: 0). */
  async stop(unregister: boolean): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (unregister && this.state.registeredAt > 0) await this.attempt(0).catch(() => undefined);
    this.set({ status: 'unregistered', expires: 0, nextTry: 0 });
  }

  private plan(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.set({ nextTry: this.now() + ms });
    this.timer = setTimeout(() => void this.run(this.cfg.expires), ms);
    this.timer.unref();
  }

  private run(expires: number): Promise<void> {
    const p = this.attempt(expires)
      .then((granted) => {
        this.set({ failures: 0, cause: '', status: 'registered', expires: granted, registeredAt: this.now() });
        this.plan(Math.max(1000, granted * 800));
      })
      .catch((e: unknown) => {
        const f = this.state.failures + 1;
        const r = this.d.retry();
        const back = Math.min(r.maxMs, r.minMs * 2 ** Math.min(f - 1, 20));
        const after = e instanceof RetryAfter ? Math.max(e.ms, back / 2) : back * (0.5 + this.rng() / 2);
        const cause = (e as Error).message;
        if (this.state.status !== 'failed' || this.state.cause !== cause)
          this.d.log.warn({ gateway: this.cfg.name, cause, retryMs: Math.round(after) }, 'trunk registration failed');
        this.set({ status: 'failed', cause, expires: 0, failures: f });
        this.plan(after);
      })
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.running = p;
    return p;
  }

  /** One REGISTER (with its challenge, 423 and hop failover); resolves with the expiry granted. */
  private async attempt(expires: number): Promise<number> {
    const c = this.cfg;
    if (expires > 0) this.set({ status: 'registering' });
    let hops: SipHop[];
    try {
      hops = await this.d.resolver.resolve(c.host, c.port, c.transport, c.dns);
    } catch (e) {
      throw new Error(e instanceof ResolveError ? e.message : `DNS: ${(e as Error).message}`);
    }
    this.d.trust(hops.map((h) => h.host));
    let last = 'no registrar address';
    for (const hop of hops) {
      let auth: SipHeader | undefined;
      let challenges = 0;
      let asked = expires;
      for (let round = 0; round < 4; round++) {
        const { req, contact } = this.build(hop, asked, auth);
        const res = await this.send(req, hop);
        const where = `${hop.transport}:${hop.host}:${hop.port}`;
        if (res === 'timeout' || res === 'transport-error') {
          last = `${where}: ${res === 'timeout' ? 'no answer (timeout)' : 'transport error'}`;
          break;
        }
        this.set({ registrar: where });
        if (res.status >= 200 && res.status < 300) return expires === 0 ? 0 : grantedExpires(res, contact, asked);
        if (res.status === 401 || res.status === 407) {
          const h = getHeader(res, res.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate');
          const stale = /stale\s*=\s*"?true/i.test(h ?? '');
          if (!h || (challenges > 0 && !stale)) throw new Error(`${where}: ${res.status} credentials refused`);
          const realm = parseDigestHeader(h)?.params.get('realm') ?? '';
          if (c.realm && realm !== c.realm)
            throw new Error(`${where}: the registrar asks for realm "${realm}", the gateway's realm is "${c.realm}"`);
          const value = digestAnswer(h, c.authUser, c.password, 'REGISTER', req.uri);
          if (!value) throw new Error(`${where}: ${res.status} with a challenge that cannot be answered`);
          auth = { name: res.status === 401 ? 'Authorization' : 'Proxy-Authorization', value };
          challenges++;
          continue;
        }
        if (res.status === 423) {
          const min = Number(getHeader(res, 'Min-Expires')?.trim());
          if (!(min > asked) || min > 86400) throw new Error(`${where}: 423 without a usable Min-Expires`);
          asked = min;
          continue;
        }
        last = `${where}: ${res.status} ${res.reason}`;
        if (res.status === 503 || res.status === 408 || res.status === 500) {
          const ra = Number(
            getHeader(res, 'Retry-After')
              ?.trim()
              .split(/[\s;(]/)[0],
          );
          if (hops.indexOf(hop) === hops.length - 1 && ra > 0) throw new RetryAfter(last, ra * 1000);
          break;
        }
        throw new Error(last);
      }
    }
    throw new Error(last);
  }

  private build(hop: SipHop, expires: number, auth?: SipHeader): { req: SipRequest; contact: string } {
    const c = this.cfg;
    const t: SipTransport = hop.transport;
    const tp = t === 'udp' ? '' : `;transport=${t}`;
    const domain = uriHostPart(c.host);
    const ruri = `sip:${domain}${c.dns === '' ? `:${c.port}` : ''}${tp}`;
    const aor = `sip:${escapeUser(c.aor)}@${domain}`;
    const l = this.d.stack.localAddress(t);
    const contact = `sip:${escapeUser(c.contact)}@${uriHostPart(l?.host ?? '127.0.0.1')}:${l?.port ?? 5060}${tp}`;
    this.cseq++;
    const headers: SipHeader[] = [
      { name: 'From', value: `<${aor}>;tag=${this.fromTag}` },
      { name: 'To', value: `<${aor}>` },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${this.cseq} REGISTER` },
      { name: 'Contact', value: `<${contact}>;expires=${expires}` },
      { name: 'Expires', value: String(expires) },
      { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' },
    ];
    if (auth) headers.push(auth);
    headers.push({ name: 'Content-Length', value: '0' });
    return {
      req: { type: 'request', method: 'REGISTER', uri: ruri, version: 'SIP/2.0', headers, body: Buffer.alloc(0) },
      contact,
    };
  }

  private send(req: SipRequest, hop: SipHop): Promise<Outcome> {
    return new Promise((done) => {
      // the transaction's own timer F is 32 s: a registrar that is down is noticed sooner
      const guard = setTimeout(() => done('timeout'), this.d.answerMs ?? 8000);
      guard.unref();
      const resolve = (o: Outcome) => {
        clearTimeout(guard);
        done(o);
      };
      try {
        const ct = this.d.stack.request(req, { transport: hop.transport, host: hop.host, port: hop.port });
        ct.on('final', (res: SipResponse) => resolve(res));
        ct.on('timeout', () => resolve('timeout'));
        ct.on('transport-error', () => resolve('transport-error'));
      } catch (e) {
        this.d.log.debug({ err: String(e), gateway: this.cfg.name }, 'REGISTER not sent');
        resolve('transport-error');
      }
    });
  }

  private set(p: Partial<TrunkState>): void {
    Object.assign(this.state, p);
    this.d.changed({ ...this.state });
  }
}

/** A failure whose registrar named when to come back (Retry-After). */
class RetryAfter extends Error {
  constructor(
    message: string,
    readonly ms: number,
  ) {
    super(message);
  }
}
