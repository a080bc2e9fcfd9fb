/** REGISTER: the registrar (RFC 3261 §10) over the location service, digest-authenticated. */
import { getHeader, uriUser, type SipHeader, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { Binding, UpdateInput, UpdateResult } from './location.js';
import type { SipContext } from './context.js';
import { expiresHeader, expiresParam, qParam } from './expires.js';

type Stored = UpdateResult | { ok: false; status: number; reason: string; headers: SipHeader[] };

export class Registrar {
  /** Called after a REGISTER that added a binding of a user with stored messages (offline delivery). */
  onRegistered?: (username: string, b: Binding) => void;

  constructor(private readonly ctx: SipContext) {}

  /** The store's answer; a shared store that fails: 503 with Retry-After (the phone tries again), logged. */
  private async stored(p: Promise<UpdateResult>): Promise<Stored> {
    try {
      return await p;
    } catch (e) {
      this.ctx.services.log.warn({ err: (e as Error).message }, 'REGISTER refused: the shared location store failed');
      return {
        ok: false,
        status: 503,
        reason: 'Service Unavailable (registrations cannot be stored now)',
        headers: [{ name: 'Retry-After', value: '5' }],
      };
    }
  }

  async onRegister(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const core = req.core!;
    const aor = uriUser(core.to!.uri);
    const user = await this.ctx.authenticate(req, tx, src, false);
    if (!user) return;
    if (aor !== user.username)
      return this.ctx.respond(tx, req, 403, 'Forbidden (the To user is not the authenticated user)');
    const min = this.ctx.o.sipminexpires;
    const max = this.ctx.o.sipmaxexpires;
    const hdrExp = expiresHeader(req);
    if (hdrExp === -1) return this.ctx.respond(tx, req, 400, 'Malformed Expires header');
    const callId = core.callId!;
    const cseq = core.cseq!.seq;
    let result: Stored;
    const loc = this.ctx.location;
    if (core.contactStar) {
      if (hdrExp !== 0) return this.ctx.respond(tx, req, 400, 'Contact: * requires Expires: 0');
      result = await this.stored(loc.unregisterAll(user.username, callId, cseq));
    } else {
      const inputs: UpdateInput[] = [];
      const ua = (getHeader(req, 'User-Agent') ?? '').slice(0, 128);
      for (const c of core.contact) {
        const pe = expiresParam(c.params);
        if (pe === -1) return this.ctx.respond(tx, req, 400, 'Malformed expires parameter');
        let exp = pe ?? hdrExp ?? Math.min(3600, max);
        if (exp > 0 && exp < min)
          return this.ctx.respond(tx, req, 423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(min) }]);
        if (exp > max) exp = max;
        const q = qParam(c.params);
        if (Number.isNaN(q)) return this.ctx.respond(tx, req, 400, 'Malformed q parameter');
        if (c.uri.kind !== 'sip' && exp > 0) return this.ctx.respond(tx, req, 400, 'Contact must be a SIP URI');
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
        ? await this.stored(loc.register(user.username, callId, cseq, inputs))
        : { ok: true as const, bindings: loc.all(user.username), added: [], removed: [] };
    }
    if (!result.ok)
      return this.ctx.respond(tx, req, result.status, result.reason, 'headers' in result ? result.headers : []);
    const t = this.ctx.now();
    const headers: SipHeader[] = result.bindings.map((b) => ({
      name: 'Contact',
      value: `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - t) / 1000))}`,
    }));
    headers.push({ name: 'Date', value: new Date(t).toUTCString() });
    this.ctx.respond(tx, req, 200, 'OK', headers);
    const log = this.ctx.services.logs.get('sip');
    if (log.isLevelEnabled('info') && (result.added.length || result.removed.length)) {
      const src1 = `${src.transport}:${src.ip}:${src.port}`;
      const what = result.bindings.length ? 'registered' : 'unregistered';
      log.info({ user: user.username, src: src1, added: result.added.length, removed: result.removed.length }, what);
    }
    // offline messages: delivered to the device that just registered
    if (this.ctx.ims.hasPending(user.username)) {
      const key = core.contact[0]?.uri.raw;
      const b = key ? result.bindings.find((x) => x.contact === key) : undefined;
      if (b) this.onRegistered?.(user.username, b);
    }
  }
}
