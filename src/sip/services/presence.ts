/**
 * Presence: PUBLISH (RFC 3903) and SUBSCRIBE/NOTIFY (RFC 6665, event package "presence", PIDF bodies) plus the
 * status of a user (offline / online / calling / speaking) and the presence string of presence_set.
 *
 * With shared state a published document lives in `state.ttl('publish')` (expiring with the publication) and is
 * announced on the bus, so a SUBSCRIBE, a NOTIFY or presence_get on any node sees it and a refresh (SIP-If-Match)
 * may reach any node; each node keeps a copy that the bus keeps in step and reads the store on a miss.
 */
import { randomBytes } from 'node:crypto';
import { generateTag, getHeader, getHeaders, mediaType, uriHostPart, uriUser } from '../message/index.js';
import type { SipHeader, SipRequest } from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipTarget } from '../stack.js';
import { targetOf } from '../transport/types.js';
import { finalResponse } from '../transaction/final.js';
import { inDialogHeaders } from '../dialog/headers.js';
import { buildPidf, parsePidf, PidfError, type PresenceInfo } from './pidf.js';
import { statusNumber, STATUS_NAMES, type UserStatusNo } from './status.js';
import { expiresHeader } from './expires.js';
import type { SipContext } from './context.js';
import type { Bus, TtlStore } from '../../state/index.js';

export const PIDF = 'application/pidf+xml';

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

export class Presence {
  /** Presence strings (presence_set or the note of a PUBLISH), by username; mirrors tb_presence. */
  private readonly presence = new Map<string, string>();
  private readonly publications = new Map<string, Publication>();
  private readonly subs = new Map<string, Subscription>();
  private readonly watchers = new Map<string, Set<Subscription>>();

  private bus?: Bus;
  /** The published documents of every node (shared state only). */
  private shared?: TtlStore;
  private unsubscribe?: () => void;
  private unsubscribePub?: () => void;

  constructor(private readonly ctx: SipContext) {}

  /** Loads the stored presence strings (tb_presence). */
  async load(): Promise<void> {
    const rows = await this.ctx.services.storage.db
      .selectFrom('tb_presence')
      .innerJoin('tb_users', 'tb_users.id', 'tb_presence.userid')
      .select(['tb_users.username', 'tb_presence.status'])
      .execute();
    this.presence.clear();
    for (const r of rows) if (r.status) this.presence.set(r.username, r.status);
  }

  /** 0 does not exist, 1 offline, 2 online, 3 calling, 4 speaking. */
  async status(username: string): Promise<UserStatusNo> {
    const u = await this.ctx.services.users.forAuth(username);
    return statusNumber(
      !!u && u.username === username,
      this.ctx.location.isOnline(username),
      this.ctx.calls.get(username),
    );
  }

  /** Presence string of a user for presence_get: the string set (presence_set / PUBLISH) or the status name. */
  async presenceOf(username: string): Promise<string> {
    const n = await this.status(username);
    if (n === 0) return STATUS_NAMES[0];
    const pub = await this.publication(username).catch(() => undefined);
    if (pub?.info.note) return pub.info.note;
    return this.presence.get(username) ?? STATUS_NAMES[n];
  }

  /** presence_set: stores the string (tb_presence) and notifies watchers. */
  async setPresence(userId: number, username: string, status: string, pidf: string | null = null): Promise<void> {
    const t = this.ctx.now();
    await this.ctx.services.storage.db
      .insertInto('tb_presence')
      .values({ userid: userId, status, pidf, updated_at: t })
      .onConflict((oc) => oc.column('userid').doUpdateSet({ status, pidf, updated_at: t }))
      .execute();
    this.applyPresence(username, status);
    if (this.bus) void this.bus.publish('presence', { u: username, s: status }).catch(() => undefined);
  }

  private applyPresence(username: string, status: string): void {
    if (status) this.presence.set(username, status);
    else this.presence.delete(username);
    this.notifyWatchers(username);
  }

  /**
   * Shares presence strings with the other nodes: a presence_set anywhere updates every node's copy of tb_presence
   * (the bus carries it; after a lost bus the table is read again).
   */
  share(bus: Bus): void {
    this.bus = bus;
    this.unsubscribe = bus.subscribe('presence', (data, from) => {
      const m = data as { u?: unknown; s?: unknown };
      if (!from.self && typeof m.u === 'string' && typeof m.s === 'string') this.applyPresence(m.u, m.s);
    });
    bus.onRejoin(() => void this.load().catch(() => undefined));
    this.shared = this.ctx.services.state.ttl('publish');
    this.unsubscribePub = bus.subscribe('publish', (data, from) => {
      const m = data as { u?: unknown; p?: Publication | null };
      if (from.self || typeof m.u !== 'string') return;
      if (m.p && typeof m.p.etag === 'string' && m.p.expiresAt > this.ctx.now()) this.publications.set(m.u, m.p);
      else this.publications.delete(m.u);
      this.notifyWatchers(m.u);
    });
  }

  unshare(): void {
    this.unsubscribe?.();
    this.unsubscribePub?.();
    this.bus = undefined;
    this.shared = undefined;
  }

  /**
   * The live publication of a user: this node's copy, else (shared state) the store's, copied here. `strict`: read
   * the store even with a copy (a PUBLISH refresh must see another node's newer entity tag); rejects when the
   * shared store does not answer.
   */
  private async publication(username: string, strict = false): Promise<Publication | undefined> {
    const t = this.ctx.now();
    const local = this.publications.get(username);
    if (local && local.expiresAt <= t) this.publications.delete(username);
    if (!this.shared || (!strict && local && local.expiresAt > t))
      return local && local.expiresAt > t ? local : undefined;
    const raw = await this.shared.get(username);
    const pub = raw ? (JSON.parse(raw) as Publication) : undefined;
    if (pub && pub.expiresAt > t) this.publications.set(username, pub);
    else this.publications.delete(username);
    return pub && pub.expiresAt > t ? pub : undefined;
  }

  /** Stores (or, with null, ends) a user's publication here and, with shared state, for every node. */
  private async putPublication(username: string, pub: Publication | null): Promise<void> {
    if (pub) this.publications.set(username, pub);
    else this.publications.delete(username);
    if (!this.shared) return;
    if (pub) await this.shared.set(username, JSON.stringify(pub), Math.max(1, pub.expiresAt - this.ctx.now()));
    else await this.shared.delete(username);
    if (this.bus) void this.bus.publish('publish', { u: username, p: pub }).catch(() => undefined);
  }

  private expiresFor(
    req: SipRequest,
  ): { ok: true; exp: number } | { ok: false; status: number; reason: string; headers?: SipHeader[] } {
    const min = this.ctx.o.sipminexpires;
    const max = this.ctx.o.sipmaxexpires;
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

  async onPublish(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const ev = (getHeader(req, 'Event') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ev !== 'presence')
      return this.ctx.respond(tx, req, 489, 'Bad Event', [{ name: 'Allow-Events', value: 'presence' }]);
    const user = await this.ctx.authenticate(req, tx, src, true);
    if (!user) return;
    const target = uriUser(req.ruri);
    if (target !== user.username)
      return this.ctx.respond(tx, req, 403, 'Forbidden (only your own presence can be published)');
    const e = this.expiresFor(req);
    if (!e.ok) return this.ctx.respond(tx, req, e.status, e.reason, e.headers);
    const ifMatch = getHeader(req, 'SIP-If-Match')?.trim();
    let live: Publication | undefined;
    try {
      live = await this.publication(user.username, true);
    } catch (err) {
      return this.unreachable(tx, req, err);
    }
    if (ifMatch !== undefined && (!live || live.etag !== ifMatch))
      return this.ctx.respond(tx, req, 412, 'Conditional Request Failed');
    if (ifMatch === undefined && req.body.length === 0)
      return this.ctx.respond(tx, req, 400, 'PUBLISH without SIP-If-Match needs a body');
    if (e.exp === 0) {
      try {
        await this.putPublication(user.username, null);
      } catch (err) {
        return this.unreachable(tx, req, err);
      }
      await this.setPresence(user.id, user.username, '', null);
      return this.ctx.respond(tx, req, 200, 'OK', [{ name: 'Expires', value: '0' }]);
    }
    let info = live?.info;
    if (req.body.length) {
      try {
        info = parsePidf(req.body.toString('utf8'));
      } catch (err) {
        if (err instanceof PidfError) return this.ctx.respond(tx, req, 400, `Bad PIDF: ${err.message}`);
        throw err;
      }
    }
    const etag = randomBytes(8).toString('hex');
    try {
      await this.putPublication(user.username, { etag, expiresAt: this.ctx.now() + e.exp * 1000, info: info! });
    } catch (err) {
      return this.unreachable(tx, req, err);
    }
    if (req.body.length)
      await this.setPresence(
        user.id,
        user.username,
        info!.note ?? (info!.basic === 'open' ? 'online' : 'offline'),
        req.body.toString('utf8'),
      );
    this.ctx.respond(tx, req, 200, 'OK', [
      { name: 'SIP-ETag', value: etag },
      { name: 'Expires', value: String(e.exp) },
    ]);
  }

  /** The shared store of publications does not answer: 503 with Retry-After, logged with the reason. */
  private unreachable(tx: ServerTransaction, req: SipRequest, err: unknown): void {
    const why = this.ctx.services.state.unavailable() ?? String((err as Error)?.message ?? err);
    this.ctx.services.log.warn({ method: req.method, why }, 'SIP PUBLISH refused: shared state unreachable');
    this.ctx.respond(tx, req, 503, 'Service Unavailable (shared state unreachable)', [
      { name: 'Retry-After', value: '5' },
    ]);
  }

  async onSubscribe(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const ev = (getHeader(req, 'Event') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ev !== 'presence')
      return this.ctx.respond(tx, req, 489, 'Bad Event', [{ name: 'Allow-Events', value: 'presence' }]);
    const accepts = getHeaders(req, 'Accept');
    if (
      accepts.length &&
      !accepts.some((a) => a.split(',').some((t) => [PIDF, '*/*', 'application/*'].includes(mediaType(t))))
    ) {
      return this.ctx.respond(tx, req, 406, 'Not Acceptable', [{ name: 'Accept', value: PIDF }]);
    }
    const user = await this.ctx.authenticate(req, tx, src, true);
    if (!user) return;
    const e = this.expiresFor(req);
    if (!e.ok) return this.ctx.respond(tx, req, e.status, e.reason, e.headers);
    const core = req.core!;
    const toTag = core.to!.tag;
    const fromTag = core.from!.tag ?? '';
    const local = this.ctx.stack.localAddress(src.transport);
    const host = local ? uriHostPart(local.host) : src.localIp;
    const param = src.transport === 'udp' ? '' : `;transport=${src.transport}`;
    const contact = `<sip:${host}:${local?.port ?? src.localPort}${param}>`;
    let sub: Subscription | undefined;
    if (toTag) {
      sub = this.subs.get(subKey(core.callId!, toTag, fromTag));
      if (!sub || sub.watcher !== user.username) return this.ctx.respond(tx, req, 481, 'Subscription Does Not Exist');
      sub.expiresAt = this.ctx.now() + e.exp * 1000;
      sub.target = targetOf(src);
      this.ctx.respond(tx, req, 200, 'OK', [
        { name: 'Expires', value: String(e.exp) },
        { name: 'Contact', value: contact },
      ]);
    } else {
      const presentity = uriUser(req.ruri);
      const p = presentity ? await this.ctx.userFor(presentity) : null;
      if (!p) return this.ctx.respond(tx, req, 404, 'Not Found');
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
        expiresAt: this.ctx.now() + e.exp * 1000,
        watcher: user.username,
        presentity: p.username,
      };
      if (e.exp > 0) {
        if (this.subs.size >= 100_000) return this.ctx.respond(tx, req, 503, 'Too many subscriptions');
        this.subs.set(sub.key, sub);
        let set = this.watchers.get(p.username);
        if (!set) this.watchers.set(p.username, (set = new Set()));
        set.add(sub);
      }
      this.ctx.respond(
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
      this.ctx.track(this.notify(sub, 'terminated;reason=timeout'));
    } else this.ctx.track(this.notify(sub, `active;expires=${e.exp}`));
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
    const livePub = await this.publication(username).catch(() => undefined);
    const basic: 'open' | 'closed' = n >= 2 || livePub?.info.basic === 'open' ? 'open' : 'closed';
    let note = livePub?.info.note ?? this.presence.get(username);
    if (n === 3 || n === 4) note = STATUS_NAMES[n];
    note ??= STATUS_NAMES[n];
    return buildPidf(entity, { basic, note });
  }

  private async notify(sub: Subscription, state: string): Promise<void> {
    sub.cseq++;
    const local = this.ctx.stack.localAddress(sub.target.transport);
    const contactHost = local ? `${uriHostPart(local.host)}:${local.port}` : '127.0.0.1';
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
      ct = this.ctx.stack.request(msg, sub.target);
    } catch (e) {
      this.ctx.services.log.warn({ err: String(e) }, 'SIP NOTIFY could not be sent');
      return;
    }
    const res = await finalResponse(ct);
    if (!res || res.status === 481 || res.status >= 400) this.removeSub(sub);
  }

  notifyWatchers(username: string): void {
    const set = this.watchers.get(username);
    if (!set) return;
    const t = this.ctx.now();
    for (const sub of [...set]) {
      const left = Math.max(0, Math.round((sub.expiresAt - t) / 1000));
      if (left > 0) this.ctx.track(this.notify(sub, `active;expires=${left}`));
    }
  }

  sweep(): void {
    const t = this.ctx.now();
    for (const sub of [...this.subs.values()]) {
      if (sub.expiresAt <= t) {
        this.removeSub(sub);
        this.ctx.track(this.notify(sub, 'terminated;reason=timeout'));
      }
    }
    for (const [u, p] of this.publications) {
      if (p.expiresAt <= t) {
        this.publications.delete(u);
        this.notifyWatchers(u);
      }
    }
  }

  counts(): { subscriptions: number; publications: number } {
    return { subscriptions: this.subs.size, publications: this.publications.size };
  }
}

function subKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}
