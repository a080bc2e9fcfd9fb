/**
 * The SIP server (layer 2) on top of the stack: validates each request and dispatches it by concern — REGISTER to
 * the registrar, PUBLISH / SUBSCRIBE to presence, MESSAGE to messaging, OPTIONS (and the API carried in SIP,
 * X-MVAPI) to options; requests inside a dialog (BYE, re-INVITE, ACK, CANCEL, UPDATE, INFO, REFER) to the owner of
 * that dialog through the dialog table (481 when nobody holds it); a new INVITE to the call handler (the B2BUA), 501
 * without one; a REFER outside a dialog 405 (transfers are REFERs inside a call). The API commands
 * (src/api/commands/sip.ts) reach it through `services.sip`. See docs/sip.md.
 */
import { getHeader, mediaType, uriHostPart, validateRequest, type SipRequest } from './message/index.js';
import type { ServerTransaction, SipSource, SipStack, SipStackLike, SipTransport } from './stack.js';
import type { DomainServices } from '../domain/deps.js';
import type { AuthUser } from '../domain/accounts/users.js';
import { DigestAuth, type DigestAlgorithm } from './services/digest.js';
import { LocationStore, type Binding } from './services/location.js';
import { SharedLocation } from './services/sharedlocation.js';
import { OfflineIms } from './services/imstore.js';
import { CallStates, type UserStatusNo } from './services/status.js';
import { SipContext } from './services/context.js';
import { Registrar } from './services/registrar.js';
import { Presence, PIDF } from './services/presence.js';
import { Messaging, type PhoneMessageHandler } from './services/messaging.js';
import { OptionsService, type SipApiHandler } from './services/options.js';
import { DialogTable, IN_DIALOG_METHODS } from './dialog/table.js';
import type { RelayDirectory } from './services/relaydir.js';
import { qualify } from './transport/relay.js';
import { SipResolver } from './trunks/resolve.js';

export type { SipStackLike } from './stack.js';
export type { SipApiHandler } from './services/options.js';

export interface SipServerOptions {
  /** Answers an API request line carried in SIP (X-MVAPI); used when sipapi is on. */
  apiHandler?: SipApiHandler;
  /**
   * Digest algorithms offered, in challenge order (one WWW-Authenticate each). Default MD5 only: credentials with
   * SHA-256 are always accepted, but offering a second challenge breaks common UAs — sipp answers only the first
   * header and knows MD5 only; baresip 1.0 (libre) aborts with ENOSYS when any challenge names SHA-256. Pass
   * ['SHA-256', 'MD5'] for RFC 8760 order when the phones support it.
   */
  digestAlgorithms?: DigestAlgorithm[];
  /**
   * Nonce HMAC secret, the same on every process and node of the switch (the composition root derives it from the
   * data dir's key); random per process when omitted.
   */
  secret?: Buffer;
  /** How long to wait for a phone's 2xx before answering 202 to a MESSAGE (ms). */
  imWaitMs?: number;
  /**
   * Overload control: seconds for Retry-After when a new INVITE or REGISTER is to be refused (503), 0 to admit.
   * `continuation`: the request carries credentials (it answers our challenge to work already admitted).
   */
  shed?: (continuation: boolean) => number;
  /** The node relay's directory (`siprelayport`): announced once the stack listens; other nodes' TCP phones reached. */
  relay?: { directory: RelayDirectory; port: number };
  now?: () => number;
}

const hasCredentials = (req: SipRequest) =>
  getHeader(req, 'Proxy-Authorization') !== undefined || getHeader(req, 'Authorization') !== undefined;

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
  /** The dialogs of the call layers; in-dialog requests are routed by it. */
  readonly dialogs = new DialogTable();
  /** RFC 3263: gateway host names to hops (the servers of the `dnsservers` option). */
  readonly resolver: SipResolver;
  private readonly now: () => number;
  private readonly ctx: SipContext;
  private readonly registrar: Registrar;
  private readonly presence: Presence;
  private readonly messaging: Messaging;
  private readonly options: OptionsService;
  /** With Redis: every node's registrations, this.location being this node's copy. */
  private readonly shared?: SharedLocation;
  private readonly shed?: (continuation: boolean) => number;
  private readonly relay?: { directory: RelayDirectory; port: number };
  /** new INVITEs (the B2BUA); none: INVITE is answered 501 */
  private callHandler?: MethodHandler;
  private timer?: NodeJS.Timeout;
  private started = false;
  /** Methods answered (Allow). */
  private allowed: string[] = [...SIP_METHODS];

  constructor(
    private readonly services: DomainServices,
    readonly stack: SipStackLike,
    opts: SipServerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.shed = opts.shed;
    this.location = new LocationStore(16, this.now);
    this.digest = new DigestAuth({
      ttlMs: services.config.options.sipnoncettl * 1000,
      algorithms: opts.digestAlgorithms ?? ['MD5'],
      accept: ['MD5', 'SHA-256'],
      secret: opts.secret,
      now: this.now,
      shared:
        services.state?.kind === 'redis' ? { nonces: services.state.nonces, once: services.state.once } : undefined,
    });
    const st = services.state;
    if (st?.kind === 'redis')
      this.shared = new SharedLocation(
        this.location,
        st.hash('location'),
        st.bus,
        st.nodeId,
        services.log,
        16,
        this.now,
        (id) => (stack as Partial<Pick<SipStack, 'ownsConnection'>>).ownsConnection?.(id) ?? true,
      );
    if (opts.relay) this.location.viaNode = (b) => ({ ...b, connId: qualify(b.node ?? '', b.connId ?? '') });
    this.relay = opts.relay;
    this.ims = new OfflineIms(services.storage.db, this.now);
    this.ctx = new SipContext(services, stack, this.location, this.digest, this.ims, this.calls, this.now);
    this.registrar = new Registrar(this.ctx);
    this.presence = new Presence(this.ctx);
    this.messaging = new Messaging(this.ctx, opts.imWaitMs);
    this.options = new OptionsService(this.ctx, () => this.allowed, opts.apiHandler);
    this.registrar.onRegistered = (u, b) => void this.ctx.track(this.messaging.deliverOffline(u, b));
    this.location.onChange = (c) => this.presence.notifyWatchers(c.username);
    const sipLog = services.logs.get('sip');
    this.location.onExpired = (user, gone) => {
      if (sipLog.isLevelEnabled('info'))
        sipLog.info({ user, contacts: gone.map((b) => b.contact), left: this.location.all(user).length }, 'expired');
    };
    this.resolver = new SipResolver({ servers: services.config.options.dnsservers ?? [] });
    let dnsServers = (services.config.options.dnsservers ?? []).join(',');
    services.config.onChange((o) => {
      this.digest.ttlMs = o.sipnoncettl * 1000;
      if (o.dnsservers.join(',') !== dnsServers) this.resolver.setServers(o.dnsservers);
      dnsServers = o.dnsservers.join(',');
    });
  }

  /** Loads stored state, attaches to the stack and starts it. Returns the stack's listeners. */
  async start(): Promise<Array<{ transport: SipTransport; address: string; port: number }>> {
    await this.ims.load();
    await this.presence.load();
    this.stack.onRequest((req, tx, src) => this.dispatch(req, tx, src));
    this.stack.onAck((req, src) => void this.dialogs.lookup(req)?.(req, undefined, src));
    // a stream connection that closes takes its bindings with it (RFC 5626 flow semantics): the phone re-registers
    const withClose = this.stack as SipStackLike & { onConnectionClosed?: (h: (connId: string) => void) => void };
    withClose.onConnectionClosed?.((connId) => this.location.connectionClosed(connId));
    const st = this.services.state;
    if (st?.kind === 'redis') {
      // every node's registrations, call states and presence strings
      await this.shared?.start();
      this.calls.onRemoteChange = (u) => this.presence.notifyWatchers(u);
      this.calls.share(st.bus);
      this.presence.share(st.bus);
    }
    this.location.start();
    this.timer = setInterval(() => this.presence.sweep(), 1000);
    this.timer.unref();
    this.started = true;
    const listening = await this.stack.start();
    if (this.relay)
      await this.relay.directory.start(this.stack.localAddress('udp')?.host ?? '127.0.0.1', this.relay.port);
    return listening;
  }

  async stop(): Promise<void> {
    this.relay?.directory.stop();
    this.shared?.stop();
    this.calls.stop();
    this.presence.unshare();
    this.location.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.started) await this.stack.stop();
    this.started = false;
    // in-flight work (IM deliveries, NOTIFYs) ends with the stack's transactions; wait a little for DB writes
    await Promise.race([Promise.allSettled([...this.ctx.pending]), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  /** The handler of new (out-of-dialog) INVITEs: the call layer. Adds INVITE, UPDATE, INFO and REFER to Allow. */
  setCallHandler(h: MethodHandler | undefined): void {
    this.callHandler = h;
    this.allowed = h ? [...SIP_METHODS, 'INVITE', 'UPDATE', 'INFO', 'REFER'] : [...SIP_METHODS];
  }

  /** Call state hook for the call layers: 3 calling, 4 speaking, null when the call ends. */
  setCallState(username: string, state: 3 | 4 | null): void {
    const before = this.calls.get(username);
    this.calls.set(username, state);
    if (before !== (state ?? undefined)) this.presence.notifyWatchers(username);
  }

  /** The realm / our domain for a request: sipdomain, else the host the request was sent to. */
  realm(req: SipRequest, src: SipSource): string {
    return this.ctx.realm(req, src);
  }

  /**
   * Digest check of a request (407 challenge when `proxy`, else 401). Answers the challenge or the refusal (403,
   * counted toward a ban) itself and returns null then; else the authenticated user.
   */
  authenticate(req: SipRequest, tx: ServerTransaction, src: SipSource, proxy = true): Promise<AuthUser | null> {
    return this.ctx.authenticate(req, tx, src, proxy);
  }

  // ------------------------------------------------------------------ users and presence

  /** 0 does not exist, 1 offline, 2 online, 3 calling, 4 speaking. */
  status(username: string): Promise<UserStatusNo> {
    return this.presence.status(username);
  }

  /** Presence string of a user for presence_get: the string set (presence_set / PUBLISH) or the status name. */
  presenceOf(username: string): Promise<string> {
    return this.presence.presenceOf(username);
  }

  /** presence_set: stores the string (tb_presence) and notifies watchers. */
  setPresence(userId: number, username: string, status: string, pidf: string | null = null): Promise<void> {
    return this.presence.setPresence(userId, username, status, pidf);
  }

  /** Presence of a user as a PIDF document (registration, call state, published or set status). */
  pidfOf(username: string, entity: string): Promise<string> {
    return this.presence.pidfOf(username, entity);
  }

  /**
   * Delivers an IM to every registered device of `to`; 'delivered' as soon as one answers 2xx within `waitMs`,
   * 'queued' when still in flight (it is stored offline if no device accepts it in the end), 'stored' when offline.
   */
  deliverIm(
    from: string,
    to: string,
    body: Buffer,
    contentType: string,
    waitMs = 4000,
  ): Promise<'delivered' | 'queued' | 'stored'> {
    return this.messaging.deliverIm(from, to, body, contentType, waitMs);
  }

  /** MESSAGE to a phone number (no such user) goes to `fn` (the SMS service), answered with its status. */
  setPhoneMessageHandler(fn: PhoneMessageHandler | undefined): void {
    this.messaging.toPhone = fn;
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
          source: `${uriHostPart(b.srcIp)}:${b.srcPort}`,
          user_agent: b.userAgent,
          expires: Math.max(0, Math.round((b.expiresAt - t) / 1000)),
          q: b.q,
        });
    };
    if (username !== undefined) add(username, this.location.all(username));
    else for (const [u, list] of this.location.entries()) add(u, list);
    return rows;
  }

  /** Counts for diagnostics. */
  stats(): { users: number; bindings: number; subscriptions: number; publications: number; nonces: number } {
    const s = this.location.size();
    return { ...s, ...this.presence.counts(), nonces: this.digest.tracked() };
  }

  // ------------------------------------------------------------------ dispatch

  private dispatch(req: SipRequest, tx: ServerTransaction, src: SipSource): void {
    this.ctx.track(
      this.handle(req, tx, src).catch((e: unknown) => {
        this.services.log.warn(
          { err: String((e as Error)?.message ?? e), method: req.method, ip: src.ip },
          'SIP request failed',
        );
        try {
          this.ctx.respond(tx, req, 500, 'Server Internal Error');
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
    // INVITE and REFER open something new without a To tag; with one (or any other of these methods) it is a dialog's
    const opens = method === 'INVITE' || method === 'REFER';
    const inDialog = IN_DIALOG_METHODS.has(method) && (!opens || !!req.core?.to?.tag);
    const wait = !inDialog && (method === 'INVITE' || method === 'REGISTER') ? this.shed?.(hasCredentials(req)) : 0;
    if (wait) return this.ctx.respond(tx, req, 503, 'Service Unavailable', [{ name: 'Retry-After', value: `${wait}` }]);
    const allowed = this.allowed;
    let accept: string[] = [];
    if (method === 'MESSAGE' || method === 'OPTIONS') {
      const ct = getHeader(req, 'Content-Type');
      const mt = ct ? mediaType(ct) : '';
      accept = mt && (IM_TYPES.has(mt) || mt.startsWith('text/')) ? [mt] : [...IM_TYPES];
    } else if (method === 'PUBLISH' || method === 'NOTIFY') accept = [PIDF];
    else if (method === 'INFO') {
      // INFO carries what the parties agreed on (DTMF relay, …): passed on as it is
      const ct = getHeader(req, 'Content-Type');
      accept = ct ? [mediaType(ct)] : ['application/sdp'];
    } else if (this.callHandler && (method === 'INVITE' || inDialog)) accept = ['application/sdp'];
    const rej = validateRequest(req, {
      role: method === 'REGISTER' ? 'registrar' : 'uas',
      allowedMethods: allowed,
      acceptTypes: accept,
      supported: [],
    });
    if (rej) return this.ctx.respond(tx, req, rej.status, rej.reason, rej.headers);
    if (inDialog) return this.inDialog(req, tx, src);
    switch (method) {
      case 'INVITE':
        if (this.callHandler) return this.callHandler(req, tx, src);
        break;
      case 'REGISTER':
        return this.registrar.onRegister(req, tx, src);
      case 'OPTIONS':
        return this.options.onOptions(req, tx, src);
      case 'MESSAGE':
        if (getHeader(req, 'X-MVAPI') !== undefined) return this.options.onApi(req, tx, src);
        return this.messaging.onMessage(req, tx, src);
      case 'PUBLISH':
        return this.presence.onPublish(req, tx, src);
      case 'SUBSCRIBE':
        return this.presence.onSubscribe(req, tx, src);
      case 'NOTIFY':
        return this.ctx.respond(tx, req, 481, 'Subscription Does Not Exist');
      case 'REFER':
        // a transfer is a REFER inside a call (src/sip/calls/transfer.ts); out of a dialog there is nothing to refer
        return this.ctx.respond(tx, req, 405, 'Method Not Allowed (REFER only inside a call)', [
          { name: 'Allow', value: allowed.filter((m) => m !== 'REFER').join(', ') },
        ]);
    }
    return this.ctx.respond(tx, req, 501, 'Not Implemented', [{ name: 'Allow', value: allowed.join(', ') }]);
  }

  /** A request inside a dialog: to the dialog's owner; 481 when no dialog of ours matches. */
  private async inDialog(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const owner = this.dialogs.lookup(req);
    if (owner) return owner(req, tx, src);
    // a CANCEL of an INVITE still being authenticated or routed: the INVITE sees tx.cancelled and ends with 487
    if (req.method === 'CANCEL' && tx.cancels) return this.ctx.respond(tx, req, 200, 'OK');
    return this.ctx.respond(tx, req, 481, 'Call/Transaction Does Not Exist');
  }
}
