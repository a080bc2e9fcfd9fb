/**
 * SIP services (layer 2) on top of the stack: registrar + location service with digest authentication, presence
 * (PUBLISH, SUBSCRIBE/NOTIFY with PIDF), instant messages (MESSAGE, with an offline store delivered on the next
 * REGISTER), OPTIONS, and the API carried in SIP (X-MVAPI). The API commands (src/api/commands/sip.ts) reach it
 * through `services.sip`. See docs/sip.md, "SIP services".
 */
import { randomBytes } from 'node:crypto';
import {
  createResponse,
  generateCallId,
  generateTag,
  getHeader,
  getHeaders,
  mediaType,
  validateRequest,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from './message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipStack, SipTarget, SipTransport } from './stack.js';
import type { DomainServices } from '../domain/deps.js';
import type { Source } from '../api/types.js';
import type { AuthUser } from '../domain/accounts/users.js';
import { DigestAuth, fastTag, type DigestAlgorithm } from './services/digest.js';
import { inDialogHeaders } from './dialog/headers.js';
import { LocationStore, type Binding, type BindingChange, type UpdateInput } from './services/location.js';
import { OfflineIms, type StoredIm } from './services/imstore.js';
import { buildPidf, parsePidf, PidfError, type PresenceInfo } from './services/pidf.js';
import { CallStates, statusNumber, STATUS_NAMES, type UserStatusNo } from './services/status.js';
import {
  expiresHeader,
  expiresParam,
  finalResponse,
  qParam,
  quoteDisplay,
  targetOf,
  uriHost,
  uriUser,
} from './services/util.js';

/** The part of SipStack the services use (a fake stack in unit tests implements the same). */
export type SipStackLike = Pick<
  SipStack,
  'start' | 'stop' | 'onRequest' | 'onAck' | 'request' | 'sendStateless' | 'localAddress' | 'connections'
>;

export interface SipServerOptions {
  /** Answers an API request line carried in SIP (X-MVAPI); used when sipapi is on. */
  api?: (text: string, src: Source) => Promise<string>;
  /**
   * Digest algorithms offered, in challenge order (one WWW-Authenticate each). Default MD5 only: credentials with
   * SHA-256 are always accepted, but offering a second challenge breaks common UAs — sipp answers only the first
   * header and knows MD5 only; baresip 1.0 (libre) aborts with ENOSYS when any challenge names SHA-256. Pass
   * ['SHA-256', 'MD5'] for RFC 8760 order when the phones support it.
   */
  digestAlgorithms?: DigestAlgorithm[];
  /** Nonce HMAC secret (random per process when omitted). */
  secret?: Buffer;
  /** How long to wait for a phone's 2xx before answering 202 to a MESSAGE (ms). */
  imWaitMs?: number;
  now?: () => number;
}

export type MethodHandler = (req: SipRequest, tx: ServerTransaction, src: SipSource) => Promise<void> | void;

export const SIP_METHODS = ['REGISTER', 'OPTIONS', 'MESSAGE', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'ACK', 'CANCEL', 'BYE'];
const IM_TYPES = new Set([
  'text/plain',
  'text/html',
  'message/cpim',
  'application/im-iscomposing+xml',
  'application/json',
  'text/x-mvapi',
]);
const PIDF = 'application/pidf+xml';

interface Publication {
  etag: string;
  expiresAt: number;
  info: PresenceInfo;
}

interface Subscription {
  key: string;
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  routes: string[];
  target: SipTarget;
  cseq: number;
  expiresAt: number;
  watcher: string;
  presentity: string;
}

export type EndpointRow = {
  user: string;
  contact: string;
  transport: string;
  source: string;
  user_agent: string;
  expires: number;
  q: number;
};

export class SipServer {
  readonly location: LocationStore;
  readonly digest: DigestAuth;
  readonly ims: OfflineIms;
  readonly calls = new CallStates();
  private readonly now: () => number;
  /** Presence strings (presence_set or the note of a PUBLISH), by username; mirrors tb_presence. */
  private readonly presence = new Map<string, string>();
  private readonly publications = new Map<string, Publication>();
  private readonly subs = new Map<string, Subscription>();
  private readonly watchers = new Map<string, Set<Subscription>>();
  private readonly handlers = new Map<string, MethodHandler>();
  private timer?: NodeJS.Timeout;
  private started = false;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly services: DomainServices,
    readonly stack: SipStackLike,
    private readonly opts: SipServerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.location = new LocationStore(16, this.now);
    this.digest = new DigestAuth({
      ttlMs: services.config.options.sipnoncettl * 1000,
      algorithms: opts.digestAlgorithms ?? ['MD5'],
      accept: ['MD5', 'SHA-256'],
      secret: opts.secret,
      now: this.now,
    });
    this.ims = new OfflineIms(services.storage.db, this.now);
    this.location.onChange = (c) => this.bindingsChanged(c);
    services.config.onChange((o) => (this.digest.ttlMs = o.sipnoncettl * 1000));
  }

  private get o() {
    return this.services.config.options;
  }

  /** Loads stored state, attaches to the stack and starts it. Returns the stack's listeners. */
  async start(): Promise<Array<{ transport: SipTransport; address: string; port: number }>> {
    await this.ims.load();
    const rows = await this.services.storage.db
      .selectFrom('tb_presence')
      .innerJoin('tb_users', 'tb_users.id', 'tb_presence.userid')
      .select(['tb_users.username', 'tb_presence.status'])
      .execute();
    for (const r of rows) if (r.status) this.presence.set(r.username, r.status);
    this.stack.onRequest((req, tx, src) => this.dispatch(req, tx, src));
    this.stack.onAck(() => undefined);
    // a stream connection that closes takes its bindings with it (RFC 5626 flow semantics): the phone re-registers
    const withClose = this.stack as SipStackLike & { onConnectionClosed?: (h: (connId: string) => void) => void };
    withClose.onConnectionClosed?.((connId) => this.location.dropConnection(connId));
    this.location.start();
    this.timer = setInterval(() => this.sweep(), 1000);
    this.timer.unref();
    this.started = true;
    return this.stack.start();
  }

  async stop(): Promise<void> {
    this.location.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.started) await this.stack.stop();
    this.started = false;
    // in-flight work (IM deliveries, NOTIFYs) ends with the stack's transactions; wait a little for DB writes
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  /** Lets a later layer (calls) handle a method (INVITE, BYE, …). */
  /** The handler the call layers installed for a method (they chain to one another). */
  getMethodHandler(method: string): MethodHandler | undefined {
    return this.handlers.get(method.toUpperCase());
  }

  setMethodHandler(method: string, h: MethodHandler): void {
    this.handlers.set(method.toUpperCase(), h);
    this.allowed = [...new Set([...SIP_METHODS, ...this.handlers.keys()])];
  }

  /** Methods answered (Allow). */
  private allowed: string[] = [...SIP_METHODS];

  /** Call state hook for the call layer: 3 calling, 4 speaking, null when the call ends. */
  setCallState(username: string, state: 3 | 4 | null): void {
    const before = this.calls.get(username);
    this.calls.set(username, state);
    if (before !== (state ?? undefined)) this.notifyWatchers(username);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => undefined);
    return p;
  }

  // ------------------------------------------------------------------ users

  /** The account a SIP username names (exact username, enabled), from the user cache. */
  private async userFor(username: string): Promise<AuthUser | null> {
    if (!username) return null;
    const u = await this.services.users.forAuth(username);
    return u && u.username === username && u.enabled ? u : null;
  }

  /** 0 does not exist, 1 offline, 2 online, 3 calling, 4 speaking. */
  async status(username: string): Promise<UserStatusNo> {
    const u = await this.services.users.forAuth(username);
    return statusNumber(!!u && u.username === username, this.location.isOnline(username), this.calls.get(username));
  }

  /** Presence string of a user for presence_get: the string set (presence_set / PUBLISH) or the status name. */
  async presenceOf(username: string): Promise<string> {
    const n = await this.status(username);
    if (n === 0) return STATUS_NAMES[0];
    const pub = this.publications.get(username);
    if (pub && pub.expiresAt > this.now() && pub.info.note) return pub.info.note;
    return this.presence.get(username) ?? STATUS_NAMES[n];
  }

  /** presence_set: stores the string (tb_presence) and notifies watchers. */
  async setPresence(userId: number, username: string, status: string, pidf: string | null = null): Promise<void> {
    const t = this.now();
    await this.services.storage.db
      .insertInto('tb_presence')
      .values({ userid: userId, status, pidf, updated_at: t })
      .onConflict((oc) => oc.column('userid').doUpdateSet({ status, pidf, updated_at: t }))
      .execute();
    if (status) this.presence.set(username, status);
    else this.presence.delete(username);
    this.notifyWatchers(username);
  }

  /** Registered devices (endpoints / reguser). */
  endpoints(username?: string): EndpointRow[] {
    const t = this.now();
    const rows: EndpointRow[] = [];
    const add = (u: string, list: Binding[]) => {
      for (const b of list)
        rows.push({
          user: u,
          contact: b.contact,
          transport: b.transport,
          source: `${b.srcIp.includes(':') ? `[${b.srcIp}]` : b.srcIp}:${b.srcPort}`,
          user_agent: b.userAgent,
          expires: Math.max(0, Math.round((b.expiresAt - t) / 1000)),
          q: b.q,
        });
    };
    if (username !== undefined) add(username, this.location.lookup(username));
    else for (const [u, list] of this.location.entries()) add(u, list);
    return rows;
  }

  // ------------------------------------------------------------------ dispatch

  private dispatch(req: SipRequest, tx: ServerTransaction, src: SipSource): void {
    this.track(
      this.handle(req, tx, src).catch((e: unknown) => {
        this.services.log.warn(
          { err: String((e as Error)?.message ?? e), method: req.method, ip: src.ip },
          'SIP request failed',
        );
        try {
          this.respond(tx, req, 500, 'Server Internal Error');
        } catch {
          /* already answered */
        }
      }),
    );
  }

  /** Handles one request (exported for tests through the fake stack). */
  async handle(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    if (this.services.bans.isBanned(src.ip)) return; // dropped silently, as the stack does
    const method = req.method;
    if (method === 'ACK') return;
    const custom = this.handlers.get(method);
    const allowed = this.allowed;
    let accept: string[] = [];
    if (method === 'MESSAGE' || method === 'OPTIONS') {
      const ct = getHeader(req, 'Content-Type');
      const mt = ct ? mediaType(ct) : '';
      accept = mt && (IM_TYPES.has(mt) || mt.startsWith('text/')) ? [mt] : [...IM_TYPES];
    } else if (method === 'PUBLISH' || method === 'NOTIFY') accept = [PIDF];
    else if (custom) accept = ['application/sdp'];
    const rej = validateRequest(req, {
      role: method === 'REGISTER' ? 'registrar' : 'uas',
      allowedMethods: allowed,
      acceptTypes: accept,
      supported: [],
    });
    if (rej) return this.respond(tx, req, rej.status, rej.reason, rej.headers);
    if (custom) return custom(req, tx, src);
    switch (method) {
      case 'REGISTER':
        return this.onRegister(req, tx, src);
      case 'OPTIONS':
        return this.onOptions(req, tx, src);
      case 'MESSAGE':
        return this.onMessage(req, tx, src);
      case 'PUBLISH':
        return this.onPublish(req, tx, src);
      case 'SUBSCRIBE':
        return this.onSubscribe(req, tx, src);
      case 'NOTIFY':
        return this.respond(tx, req, 481, 'Subscription Does Not Exist');
      case 'CANCEL':
      case 'BYE':
        return this.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
      default:
        return this.respond(tx, req, 501, 'Not Implemented', [{ name: 'Allow', value: allowed.join(', ') }]);
    }
  }

  private respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    reason?: string,
    headers: SipHeader[] = [],
    body?: { type: string; data: Buffer },
    toTag?: string,
  ): void {
    tx.respond(
      createResponse(req, status, reason, {
        headers: [{ name: 'Server', value: `voxswitch/${this.services.version}` }, ...headers],
        body: body?.data,
        contentType: body?.type,
        toTag: toTag ?? fastTag(),
      }),
    );
  }

  /** The realm / our domain for a request: sipdomain, else the host the request was sent to. */
  realm(req: SipRequest, src: SipSource): string {
    return this.o.sipdomain || uriHost(req.ruri) || src.localIp;
  }

  /**
   * Digest check. Answers the challenge (401/407) or the refusal (403: the same for an unknown user and a wrong
   * password; counted toward a ban) itself and returns null then; else the authenticated user.
   */
  private async authenticate(
    req: SipRequest,
    tx: ServerTransaction,
    src: SipSource,
    proxy: boolean,
  ): Promise<AuthUser | null> {
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

  // ------------------------------------------------------------------ REGISTER

  private async onRegister(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const core = req.core!;
    const aor = uriUser(core.to!.uri);
    const user = await this.authenticate(req, tx, src, false);
    if (!user) return;
    if (aor !== user.username)
      return this.respond(tx, req, 403, 'Forbidden (the To user is not the authenticated user)');
    const min = this.o.sipminexpires;
    const max = this.o.sipmaxexpires;
    const hdrExp = expiresHeader(req);
    if (hdrExp === -1) return this.respond(tx, req, 400, 'Malformed Expires header');
    const callId = core.callId!;
    const cseq = core.cseq!.seq;
    let result;
    if (core.contactStar) {
      if (hdrExp !== 0) return this.respond(tx, req, 400, 'Contact: * requires Expires: 0');
      result = this.location.removeAll(user.username, callId, cseq);
    } else {
      const inputs: UpdateInput[] = [];
      const ua = (getHeader(req, 'User-Agent') ?? '').slice(0, 128);
      for (const c of core.contact) {
        const pe = expiresParam(c.params);
        if (pe === -1) return this.respond(tx, req, 400, 'Malformed expires parameter');
        let exp = pe ?? hdrExp ?? Math.min(3600, max);
        if (exp > 0 && exp < min)
          return this.respond(tx, req, 423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(min) }]);
        if (exp > max) exp = max;
        const q = qParam(c.params);
        if (Number.isNaN(q)) return this.respond(tx, req, 400, 'Malformed q parameter');
        if (c.uri.kind !== 'sip' && exp > 0) return this.respond(tx, req, 400, 'Contact must be a SIP URI');
        inputs.push({
          contact: c.uri.raw,
          expires: exp,
          transport: src.transport,
          srcIp: src.ip,
          srcPort: src.port,
          connId: src.connId,
          userAgent: ua,
          q,
        });
      }
      result = inputs.length
        ? this.location.update(user.username, callId, cseq, inputs)
        : { ok: true as const, bindings: this.location.lookup(user.username), added: [], removed: [] };
    }
    if (!result.ok) return this.respond(tx, req, result.status, result.reason);
    const t = this.now();
    const headers: SipHeader[] = result.bindings.map((b) => ({
      name: 'Contact',
      value: `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - t) / 1000))}`,
    }));
    headers.push({ name: 'Date', value: new Date(t).toUTCString() });
    this.respond(tx, req, 200, 'OK', headers);
    // offline messages: delivered to the device that just registered
    if (this.ims.hasPending(user.username)) {
      const key = core.contact[0]?.uri.raw;
      const b = key ? result.bindings.find((x) => x.contact === key) : undefined;
      if (b) this.track(this.deliverOffline(user.username, b));
    }
  }

  private bindingsChanged(c: BindingChange): void {
    this.notifyWatchers(c.username);
  }

  // ------------------------------------------------------------------ OPTIONS, API over SIP

  private capabilityHeaders(): SipHeader[] {
    return [
      { name: 'Allow', value: this.allowed.join(', ') },
      { name: 'Accept', value: ['application/sdp', PIDF, 'text/plain'].join(', ') },
      { name: 'Accept-Encoding', value: 'identity' },
      { name: 'Supported', value: '' },
      { name: 'Allow-Events', value: 'presence' },
    ].filter((h) => h.value !== '');
  }

  private async onOptions(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    if (getHeader(req, 'X-MVAPI') !== undefined) return this.onApi(req, tx, src);
    this.respond(tx, req, 200, 'OK', this.capabilityHeaders());
  }

  private async onApi(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const line = getHeader(req, 'X-MVAPI') ?? '';
    if (!this.o.sipapi || !this.opts.api) return this.respond(tx, req, 403, 'API over SIP is disabled (sipapi=false)');
    const text = line.trim() || req.body.toString('utf8').trim();
    const answer = await this.opts.api(text, { transport: 'sip', ip: src.ip, port: src.port, browser: false });
    this.respond(tx, req, 200, 'OK', [], { type: 'text/plain; charset=utf-8', data: Buffer.from(answer, 'utf8') });
  }

  // ------------------------------------------------------------------ MESSAGE

  private async onMessage(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    if (getHeader(req, 'X-MVAPI') !== undefined) return this.onApi(req, tx, src);
    const user = await this.authenticate(req, tx, src, true);
    if (!user) return;
    const target = uriUser(req.ruri) ?? uriUser(req.core!.to!.uri);
    const to = target ? await this.userFor(target) : null;
    if (!to) return this.respond(tx, req, 404, 'Not Found');
    const ct = getHeader(req, 'Content-Type') ?? 'text/plain';
    if (mediaType(ct) === 'application/im-iscomposing+xml') {
      // typing notifications are not stored; forwarded when online, else dropped
      const bs = this.location.lookup(to.username);
      for (const b of bs) void this.sendMessage(user.username, to.username, req.body, ct, b).catch(() => undefined);
      return this.respond(tx, req, bs.length ? 200 : 480, bs.length ? 'OK' : 'Temporarily Unavailable');
    }
    const r = await this.deliverIm(user.username, to.username, req.body, ct, this.opts.imWaitMs ?? 4000);
    if (r === 'delivered') return this.respond(tx, req, 200, 'OK');
    return this.respond(tx, req, 202, 'Accepted');
  }

  /** Builds and sends one MESSAGE to a binding; resolves with the final response (null: no answer). */
  private async sendMessage(
    from: string,
    to: string,
    body: Buffer,
    contentType: string,
    b: Binding,
    date?: number,
  ): Promise<SipResponse | null> {
    const local = this.stack.localAddress(b.transport);
    const domain = this.o.sipdomain || (local ? hostForUri(local.host) : '127.0.0.1');
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `${quoteDisplay(from)} <sip:${escUser(from)}@${domain}>;tag=${generateTag()}` },
      { name: 'To', value: `<sip:${escUser(to)}@${domain}>` },
      { name: 'Call-ID', value: generateCallId() },
      { name: 'CSeq', value: '1 MESSAGE' },
    ];
    if (date) headers.push({ name: 'Date', value: new Date(date).toUTCString() });
    headers.push({ name: 'Content-Type', value: contentType }, { name: 'Content-Length', value: String(body.length) });
    const msg: SipRequest = { type: 'request', method: 'MESSAGE', uri: b.contact, version: 'SIP/2.0', headers, body };
    let ct: ClientTransaction;
    try {
      ct = this.stack.request(msg, { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId });
    } catch (e) {
      this.services.log.warn({ err: String(e), to }, 'SIP MESSAGE could not be sent');
      return null;
    }
    return finalResponse(ct);
  }

  /**
   * Delivers an IM to every registered device of `to`; 'delivered' as soon as one answers 2xx within `waitMs`,
   * 'queued' when still in flight (it is stored offline if no device accepts it in the end), 'stored' when offline.
   */
  async deliverIm(
    from: string,
    to: string,
    body: Buffer,
    contentType: string,
    waitMs = 4000,
  ): Promise<'delivered' | 'queued' | 'stored'> {
    const bs = this.location.lookup(to);
    if (!bs.length) {
      await this.ims.store(from, to, body.toString('utf8'), contentType);
      return 'stored';
    }
    // true as soon as one device answers 2xx; false when every device failed
    const first = new Promise<boolean>((resolve) => {
      let left = bs.length;
      for (const b of bs) {
        void this.sendMessage(from, to, body, contentType, b).then((r) => {
          if (r !== null && r.status >= 200 && r.status < 300) resolve(true);
          else if (--left === 0) resolve(false);
        });
      }
    });
    const outcome = this.track(
      first.then(async (ok) => {
        if (!ok) await this.ims.store(from, to, body.toString('utf8'), contentType);
        return ok;
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
      timer.unref();
    });
    const r = await Promise.race([outcome, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') return 'queued';
    return r ? 'delivered' : 'stored';
  }

  /** Sends the stored messages of a user to one device, in order; each is marked delivered after its 2xx. */
  private async deliverOffline(username: string, b: Binding): Promise<number> {
    const list: StoredIm[] = await this.ims.claim(username);
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      const res = await this.sendMessage(
        m.fromuser,
        username,
        Buffer.from(m.body, 'utf8'),
        m.content_type,
        b,
        m.created_at,
      );
      if (res && res.status >= 200 && res.status < 300) {
        if (await this.ims.delivered(m.id)) n++;
      } else {
        this.ims.release(list.slice(i).map((x) => x.id));
        break;
      }
    }
    return n;
  }

  // ------------------------------------------------------------------ PUBLISH

  private expiresFor(
    req: SipRequest,
  ): { ok: true; exp: number } | { ok: false; status: number; reason: string; headers?: SipHeader[] } {
    const min = this.o.sipminexpires;
    const max = this.o.sipmaxexpires;
    const e = expiresHeader(req);
    if (e === -1) return { ok: false, status: 400, reason: 'Malformed Expires header' };
    let exp = e ?? Math.min(3600, max);
    if (exp > 0 && exp < min)
      return {
        ok: false,
        status: 423,
        reason: 'Interval Too Brief',
        headers: [{ name: 'Min-Expires', value: String(min) }],
      };
    if (exp > max) exp = max;
    return { ok: true, exp };
  }

  private async onPublish(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const ev = (getHeader(req, 'Event') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ev !== 'presence')
      return this.respond(tx, req, 489, 'Bad Event', [{ name: 'Allow-Events', value: 'presence' }]);
    const user = await this.authenticate(req, tx, src, true);
    if (!user) return;
    const target = uriUser(req.ruri);
    if (target !== user.username)
      return this.respond(tx, req, 403, 'Forbidden (only your own presence can be published)');
    const e = this.expiresFor(req);
    if (!e.ok) return this.respond(tx, req, e.status, e.reason, e.headers);
    const ifMatch = getHeader(req, 'SIP-If-Match')?.trim();
    const cur = this.publications.get(user.username);
    const live = cur && cur.expiresAt > this.now() ? cur : undefined;
    if (ifMatch !== undefined && (!live || live.etag !== ifMatch))
      return this.respond(tx, req, 412, 'Conditional Request Failed');
    if (ifMatch === undefined && req.body.length === 0)
      return this.respond(tx, req, 400, 'PUBLISH without SIP-If-Match needs a body');
    if (e.exp === 0) {
      this.publications.delete(user.username);
      await this.setPresence(user.id, user.username, '', null);
      return this.respond(tx, req, 200, 'OK', [{ name: 'Expires', value: '0' }]);
    }
    let info = live?.info;
    if (req.body.length) {
      try {
        info = parsePidf(req.body.toString('utf8'));
      } catch (err) {
        if (err instanceof PidfError) return this.respond(tx, req, 400, `Bad PIDF: ${err.message}`);
        throw err;
      }
    }
    const etag = randomBytes(8).toString('hex');
    this.publications.set(user.username, { etag, expiresAt: this.now() + e.exp * 1000, info: info! });
    if (req.body.length)
      await this.setPresence(
        user.id,
        user.username,
        info!.note ?? (info!.basic === 'open' ? 'online' : 'offline'),
        req.body.toString('utf8'),
      );
    this.respond(tx, req, 200, 'OK', [
      { name: 'SIP-ETag', value: etag },
      { name: 'Expires', value: String(e.exp) },
    ]);
  }

  // ------------------------------------------------------------------ SUBSCRIBE / NOTIFY

  private async onSubscribe(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const ev = (getHeader(req, 'Event') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ev !== 'presence')
      return this.respond(tx, req, 489, 'Bad Event', [{ name: 'Allow-Events', value: 'presence' }]);
    const accepts = getHeaders(req, 'Accept');
    if (
      accepts.length &&
      !accepts.some((a) => a.split(',').some((t) => [PIDF, '*/*', 'application/*'].includes(mediaType(t))))
    ) {
      return this.respond(tx, req, 406, 'Not Acceptable', [{ name: 'Accept', value: PIDF }]);
    }
    const user = await this.authenticate(req, tx, src, true);
    if (!user) return;
    const e = this.expiresFor(req);
    if (!e.ok) return this.respond(tx, req, e.status, e.reason, e.headers);
    const core = req.core!;
    const toTag = core.to!.tag;
    const fromTag = core.from!.tag ?? '';
    const local = this.stack.localAddress(src.transport);
    const contact = `<sip:${local ? hostForUri(local.host) : src.localIp}:${local?.port ?? src.localPort}${src.transport === 'udp' ? '' : `;transport=${src.transport}`}>`;
    let sub: Subscription | undefined;
    if (toTag) {
      sub = this.subs.get(subKey(core.callId!, toTag, fromTag));
      if (!sub || sub.watcher !== user.username) return this.respond(tx, req, 481, 'Subscription Does Not Exist');
      sub.expiresAt = this.now() + e.exp * 1000;
      sub.target = targetOf(src);
      this.respond(tx, req, 200, 'OK', [
        { name: 'Expires', value: String(e.exp) },
        { name: 'Contact', value: contact },
      ]);
    } else {
      const presentity = uriUser(req.ruri);
      const p = presentity ? await this.userFor(presentity) : null;
      if (!p) return this.respond(tx, req, 404, 'Not Found');
      const localTag = generateTag();
      const remoteContact = core.contact[0];
      sub = {
        key: subKey(core.callId!, localTag, fromTag),
        callId: core.callId!,
        localTag,
        remoteTag: fromTag,
        localUri: core.to!.uri.raw,
        remoteUri: core.from!.uri.raw,
        remoteTarget: remoteContact ? remoteContact.uri.raw : core.from!.uri.raw,
        routes: getHeaders(req, 'Record-Route'),
        target: targetOf(src),
        cseq: 0,
        expiresAt: this.now() + e.exp * 1000,
        watcher: user.username,
        presentity: p.username,
      };
      if (e.exp > 0) {
        if (this.subs.size >= 100_000) return this.respond(tx, req, 503, 'Too many subscriptions');
        this.subs.set(sub.key, sub);
        let set = this.watchers.get(p.username);
        if (!set) this.watchers.set(p.username, (set = new Set()));
        set.add(sub);
      }
      this.respond(
        tx,
        req,
        200,
        'OK',
        [
          { name: 'Expires', value: String(e.exp) },
          { name: 'Contact', value: contact },
        ],
        undefined,
        localTag,
      );
    }
    if (e.exp === 0) {
      this.removeSub(sub);
      this.track(this.notify(sub, 'terminated;reason=timeout'));
    } else this.track(this.notify(sub, `active;expires=${e.exp}`));
  }

  private removeSub(sub: Subscription): void {
    this.subs.delete(sub.key);
    const set = this.watchers.get(sub.presentity);
    if (set) {
      set.delete(sub);
      if (!set.size) this.watchers.delete(sub.presentity);
    }
  }

  /** Presence of a user as a PIDF document (registration, call state, published or set status). */
  async pidfOf(username: string, entity: string): Promise<string> {
    const n = await this.status(username);
    const pub = this.publications.get(username);
    const livePub = pub && pub.expiresAt > this.now() ? pub : undefined;
    const basic: 'open' | 'closed' = n >= 2 || livePub?.info.basic === 'open' ? 'open' : 'closed';
    let note = livePub?.info.note ?? this.presence.get(username);
    if (n === 3 || n === 4) note = STATUS_NAMES[n];
    note ??= STATUS_NAMES[n];
    return buildPidf(entity, { basic, note });
  }

  private async notify(sub: Subscription, state: string): Promise<void> {
    sub.cseq++;
    const local = this.stack.localAddress(sub.target.transport);
    const contactHost = local ? `${hostForUri(local.host)}:${local.port}` : '127.0.0.1';
    const body = Buffer.from(await this.pidfOf(sub.presentity, sub.localUri), 'utf8');
    const headers = inDialogHeaders(sub, 'NOTIFY', sub.cseq);
    headers.push(
      {
        name: 'Contact',
        value: `<sip:${contactHost}${sub.target.transport === 'udp' ? '' : `;transport=${sub.target.transport}`}>`,
      },
      { name: 'Event', value: 'presence' },
      { name: 'Subscription-State', value: state },
      { name: 'Content-Type', value: PIDF },
      { name: 'Content-Length', value: String(body.length) },
    );
    const msg: SipRequest = {
      type: 'request',
      method: 'NOTIFY',
      uri: sub.remoteTarget,
      version: 'SIP/2.0',
      headers,
      body,
    };
    let ct: ClientTransaction;
    try {
      ct = this.stack.request(msg, sub.target);
    } catch (e) {
      this.services.log.warn({ err: String(e) }, 'SIP NOTIFY could not be sent');
      return;
    }
    const res = await finalResponse(ct);
    if (!res || res.status === 481 || res.status >= 400) this.removeSub(sub);
  }

  private notifyWatchers(username: string): void {
    const set = this.watchers.get(username);
    if (!set) return;
    const t = this.now();
    for (const sub of [...set]) {
      const left = Math.max(0, Math.round((sub.expiresAt - t) / 1000));
      if (left > 0) this.track(this.notify(sub, `active;expires=${left}`));
    }
  }

  private sweep(): void {
    const t = this.now();
    for (const sub of [...this.subs.values()]) {
      if (sub.expiresAt <= t) {
        this.removeSub(sub);
        this.track(this.notify(sub, 'terminated;reason=timeout'));
      }
    }
    for (const [u, p] of this.publications) {
      if (p.expiresAt <= t) {
        this.publications.delete(u);
        this.notifyWatchers(u);
      }
    }
  }

  /** Counts for diagnostics. */
  stats(): { users: number; bindings: number; subscriptions: number; publications: number; nonces: number } {
    const s = this.location.size();
    return { ...s, subscriptions: this.subs.size, publications: this.publications.size, nonces: this.digest.tracked() };
  }
}

function subKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}

function hostForUri(h: string): string {
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/** Escapes a username for the user part of a SIP URI (RFC 3261 user = unreserved / escaped / user-unreserved). */
function escUser(u: string): string {
  return u.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) => encodeURIComponent(c));
}
