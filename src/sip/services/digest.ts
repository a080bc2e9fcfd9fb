/**
 * SIP digest authentication (RFC 2617, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth (and the RFC 2069 form
 * without qop). Nonces are stateless: `base64url(time ‖ random ‖ HMAC-SHA256(secret, time ‖ random ‖ realm))`, so any
 * nonce we issued can be checked without a table and expires after `ttlMs`. What needs state is replay protection:
 * every nonce-count (nc) accepted for a nonce is remembered until the nonce expires, and a nonce used without qop
 * (no nc) is single-use. That state lives in this process, or (with `shared`) in the switch's shared state, so that
 * a count accepted on one node is a replay on every other; the nonce secret must then be the same on every node.
 * Nothing here touches the database.
 */
import * as crypto from 'node:crypto';
import { createHash, createHmac, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import type { NonceCounts, OnceStore } from '../../state/index.js';
import { MemoryNonceCounts } from '../../state/noncecount.js';

export type DigestAlgorithm = 'MD5' | 'SHA-256';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

export interface DigestCredentials {
  scheme: string;
  params: Map<string, string>;
}

/**
 * Parses `Digest name=value, name="quoted", …` (Authorization / Proxy-Authorization). null when not Digest or
 * malformed.
 */
export function parseDigestHeader(value: string): DigestCredentials | null {
  let i = 0;
  const n = value.length;
  while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  const s0 = i;
  while (i < n && value[i] !== ' ' && value[i] !== '\t') i++;
  const scheme = value.slice(s0, i);
  if (scheme.toLowerCase() !== 'digest') return null;
  const params = new Map<string, string>();
  while (i < n) {
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    if (i >= n) break;
    const k0 = i;
    while (i < n && value[i] !== '=' && value[i] !== ',' && value[i] !== ' ' && value[i] !== '\t') i++;
    const key = value.slice(k0, i).toLowerCase();
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
    if (value[i] !== '=' || !key) return null;
    i++;
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
    let v = '';
    if (value[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = value[i]!;
        if (c === '\\' && i + 1 < n) {
          v += value[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        v += c;
        i++;
      }
      if (!closed) return null;
    } else {
      const v0 = i;
      while (i < n && value[i] !== ',' && value[i] !== ' ' && value[i] !== '\t') i++;
      v = value.slice(v0, i);
    }
    if (params.has(key)) return null; // a parameter twice is an attack or a bug: refuse
    params.set(key, v);
  }
  return { scheme, params };
}

const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

export function hashHex(alg: DigestAlgorithm, s: string): string {
  const name = alg === 'MD5' ? 'md5' : 'sha256';
  // one-shot hashing (no Hash object) where Node has it
  return oneShot ? oneShot(name, s, 'hex') : createHash(name).update(s, 'utf8').digest('hex');
}

/** RFC 7616 §3.4.2 A1 hash (non -sess). */
export function ha1(alg: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hashHex(alg, `${username}:${realm}:${password}`);
}

/** The response a client computes (RFC 7616 §3.4.1); qop undefined = RFC 2069 form. */
export function digestResponse(
  alg: DigestAlgorithm,
  ha1hex: string,
  nonce: string,
  method: string,
  uri: string,
  qop?: { qop: string; nc: string; cnonce: string },
): string {
  const ha2 = hashHex(alg, `${method}:${uri}`);
  return qop
    ? hashHex(alg, `${ha1hex}:${nonce}:${qop.nc}:${qop.cnonce}:${qop.qop}:${ha2}`)
    : hashHex(alg, `${ha1hex}:${nonce}:${ha2}`);
}

/**
 * The client side: an Authorization / Proxy-Authorization value answering a Digest challenge (WWW-Authenticate /
 * Proxy-Authenticate) with a gateway's credentials (MD5 or SHA-256, qop=auth when offered, else RFC 2069 form).
 * Null when the challenge cannot be answered (not Digest, no nonce, another algorithm).
 */
export function digestAnswer(
  challenge: string,
  username: string,
  password: string,
  method: string,
  uri: string,
): string | null {
  const c = parseDigestHeader(challenge);
  if (!c) return null;
  const realm = c.params.get('realm') ?? '';
  const nonce = c.params.get('nonce');
  if (!nonce) return null;
  const alg = parseAlgorithm(c.params.get('algorithm'));
  if (!alg) return null;
  const qops = (c.params.get('qop') ?? '').split(',').map((s) => s.trim());
  const h1 = ha1(alg, username, realm, password);
  const opaque = c.params.get('opaque');
  const q = (s: string) => `"${s.replace(/["\\]/g, (x) => '\\' + x)}"`;
  let v = `Digest username=${q(username)}, realm=${q(realm)}, nonce=${q(nonce)}, uri=${q(uri)}, algorithm=${alg}`;
  if (qops.includes('auth')) {
    const cnonce = randomBytes(8).toString('hex');
    const nc = '00000001';
    const response = digestResponse(alg, h1, nonce, method, uri, { qop: 'auth', nc, cnonce });
    v += `, response=${q(response)}, qop=auth, nc=${nc}, cnonce=${q(cnonce)}`;
  } else v += `, response=${q(digestResponse(alg, h1, nonce, method, uri))}`;
  if (opaque !== undefined) v += `, opaque=${q(opaque)}`;
  return v;
}

function parseAlgorithm(v: string | undefined): DigestAlgorithm | null {
  if (v === undefined) return 'MD5';
  const u = v.toUpperCase();
  return u === 'MD5' ? 'MD5' : u === 'SHA-256' ? 'SHA-256' : null;
}

function hexEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a.toLowerCase(), 'utf8');
  const bb = Buffer.from(b.toLowerCase(), 'utf8');
  if (ba.length !== bb.length) {
    timingSafeEqual(ba, ba); // keep the work similar
    return false;
  }
  return timingSafeEqual(ba, bb);
}

export type VerifyResult =
  | { ok: true; username: string; algorithm: DigestAlgorithm }
  /** missing: no usable credentials for this realm (challenge, no failure counted); stale: the digest is right but
   * the nonce expired or is unknown (challenge with stale=true); bad: wrong password, unknown user, replay, forged;
   * unavailable: the shared replay state does not answer (refused for now, never accepted unchecked). */
  | { ok: false; why: 'missing' | 'stale' | 'bad' | 'unavailable'; detail: string; username?: string };

export interface DigestOptions {
  /** Nonce lifetime in ms (sipnoncettl). */
  ttlMs: number;
  /** Algorithms offered, in challenge order (one WWW-Authenticate each). */
  algorithms?: readonly DigestAlgorithm[];
  /** Algorithms accepted in credentials (default MD5 and SHA-256, whatever is offered). */
  accept?: readonly DigestAlgorithm[];
  /** Server secret for the nonce HMAC (random when omitted). */
  secret?: Buffer;
  now?: () => number;
  /** Most nonces whose nc lists are tracked at once (memory bound). */
  maxTracked?: number;
  /**
   * Replay state shared by every process and node (state.nonces for counts, state.once for nonces used without
   * qop); undefined: the table of this process.
   */
  shared?: { nonces: NonceCounts; once: OnceStore };
}

type Replay = { ok: true } | { ok: false; why: 'stale' | 'bad' | 'unavailable'; detail: string };
const OK: Replay = { ok: true };

const NONCE_RAW = 8 + 8 + 16;

/** Random bytes drawn from a pooled buffer (one randomFillSync per 512 draws of 8 bytes). */
const POOL = Buffer.allocUnsafe(4096);
let poolPos = POOL.length;
export function random8(into: Buffer, at: number): void {
  if (poolPos + 8 > POOL.length) {
    randomFillSync(POOL);
    poolPos = 0;
  }
  POOL.copy(into, at, poolPos, poolPos + 8);
  poolPos += 8;
}

/** A random tag (16 hex digits = 64 bits) from the pool: RFC 3261 §19.3 asks for at least 32 random bits. */
export function fastTag(): string {
  if (poolPos + 8 > POOL.length) {
    randomFillSync(POOL);
    poolPos = 0;
  }
  const t = POOL.toString('hex', poolPos, poolPos + 8);
  poolPos += 8;
  return t;
}

/**
 * Issues and checks challenges. `verify` is given the password look-up so that an unknown user and a wrong password
 * cost the same work (a dummy password is hashed for an unknown user) and produce the same result ('bad').
 */
export class DigestAuth {
  /** Nonce lifetime (ms); may be changed at run time (config reload). */
  ttlMs: number;
  readonly algorithms: readonly DigestAlgorithm[];
  readonly accept: readonly DigestAlgorithm[];
  private readonly secret: Buffer;
  private readonly now: () => number;
  private readonly shared?: { nonces: NonceCounts; once: OnceStore };
  /** The replay state when it is not shared: nc values per nonce, bounded by maxTracked. */
  private readonly local: MemoryNonceCounts;
  private readonly dummy = randomBytes(16).toString('hex');

  constructor(o: DigestOptions) {
    this.ttlMs = o.ttlMs;
    this.algorithms = o.algorithms?.length ? o.algorithms : DIGEST_ALGORITHMS;
    this.accept = o.accept ?? DIGEST_ALGORITHMS;
    this.secret = o.secret ?? randomBytes(32);
    this.now = o.now ?? Date.now;
    this.shared = o.shared;
    this.local = new MemoryNonceCounts(this.now, o.maxTracked ?? 200_000);
  }

  /** A fresh nonce bound to the realm. */
  nonce(realm: string): string {
    const raw = Buffer.allocUnsafe(NONCE_RAW);
    raw.writeDoubleBE(this.now(), 0);
    random8(raw, 8);
    this.mac(raw.subarray(0, 16), realm).copy(raw, 16, 0, 16);
    return raw.toString('base64url');
  }

  private mac(head: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(head).update(realm, 'utf8').digest();
  }

  /** 'ok' | 'expired' | 'invalid' (not ours / other realm / tampered). */
  checkNonce(nonce: string, realm: string): { state: 'ok' | 'expired' | 'invalid'; issued?: number } {
    if (nonce.length !== 43) return { state: 'invalid' };
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_RAW) return { state: 'invalid' };
    const want = this.mac(raw.subarray(0, 16), realm).subarray(0, 16);
    if (!timingSafeEqual(want, raw.subarray(16))) return { state: 'invalid' };
    const issued = raw.readDoubleBE(0);
    const age = this.now() - issued;
    if (!Number.isFinite(issued) || age < -5000 || age > this.ttlMs) return { state: 'expired', issued };
    return { state: 'ok', issued };
  }

  /** WWW-Authenticate / Proxy-Authenticate values, one per algorithm (RFC 8760 §2.4: preferred first). */
  challenges(realm: string, stale = false): string[] {
    const nonce = this.nonce(realm);
    const r = realm.replace(/["\\]/g, '');
    return this.algorithms.map(
      (a) => `Digest realm="${r}", nonce="${nonce}", algorithm=${a}, qop="auth"${stale ? ', stale=true' : ''}`,
    );
  }

  /**
   * Checks credentials for a request. `creds` are all Authorization (or Proxy-Authorization) values; the one for our
   * realm is used. `passwordOf` returns the clear password, or null for an unknown user.
   */
  async verify(
    creds: readonly string[],
    realm: string,
    method: string,
    requestUri: string,
    passwordOf: (username: string) => Promise<string | null> | string | null,
  ): Promise<VerifyResult> {
    let c: DigestCredentials | null = null;
    for (const v of creds) {
      const p = parseDigestHeader(v);
      if (p && p.params.get('realm') === realm) {
        c = p;
        break;
      }
    }
    if (!c) return { ok: false, why: 'missing', detail: 'no credentials for this realm' };
    const P = c.params;
    const username = P.get('username');
    const nonce = P.get('nonce');
    const uri = P.get('uri');
    const response = P.get('response');
    if (!username || !nonce || uri === undefined || !response)
      return { ok: false, why: 'bad', detail: 'incomplete credentials', username };
    const alg = parseAlgorithm(P.get('algorithm'));
    if (!alg || !this.accept.includes(alg)) return { ok: false, why: 'bad', detail: 'unsupported algorithm', username };
    if (uri !== requestUri && !sameUri(uri, requestUri))
      return { ok: false, why: 'bad', detail: 'digest uri differs from the Request-URI', username };
    let qop: { qop: string; nc: string; cnonce: string } | undefined;
    let ncVal = 0;
    const q = P.get('qop');
    if (q !== undefined) {
      const nc = P.get('nc');
      const cnonce = P.get('cnonce');
      if (q.toLowerCase() !== 'auth' || !nc || !cnonce || !/^[0-9a-fA-F]{8}$/.test(nc))
        return { ok: false, why: 'bad', detail: 'bad qop/nc/cnonce', username };
      ncVal = parseInt(nc, 16);
      if (ncVal === 0) return { ok: false, why: 'bad', detail: 'nc must start at 1', username };
      qop = { qop: q, nc, cnonce };
    }
    const pwd = await passwordOf(username);
    // same work for an unknown user: hash a dummy password
    const expect = digestResponse(alg, ha1(alg, username, realm, pwd ?? this.dummy), nonce, method, uri, qop);
    const match = hexEqual(expect, response);
    if (!match || pwd === null) return { ok: false, why: 'bad', detail: 'wrong credentials', username };
    const ns = this.checkNonce(nonce, realm);
    if (ns.state !== 'ok') return { ok: false, why: 'stale', detail: `nonce ${ns.state}`, username };
    const exp = (ns.issued ?? this.now()) + this.ttlMs;
    const rp = this.shared
      ? await this.sharedReplay(nonce, qop ? ncVal : 0, exp)
      : this.localReplay(nonce, ncVal, qop, exp);
    if (!rp.ok) return { ...rp, username };
    return { ok: true, username, algorithm: alg };
  }

  /** Replay protection in this process: nc values per nonce, a nonce without qop once (as count 0). */
  private localReplay(nonce: string, ncVal: number, qop: object | undefined, exp: number): Replay {
    const v = this.local.acceptSync(nonce, qop ? ncVal : 0, exp - this.now());
    if (v === 'ok') return OK;
    if (v === 'full') return { ok: false, why: 'stale', detail: 'too many nonces in use' };
    return qop
      ? { ok: false, why: 'bad', detail: 'replayed nonce count' }
      : { ok: false, why: 'stale', detail: 'nonce already used without qop' };
  }

  /**
   * The same in the shared state (nc 0: used without qop). A store that does not answer refuses the request
   * ('unavailable': answered 503 with Retry-After, no failure counted), never accepts it unchecked.
   */
  private async sharedReplay(nonce: string, nc: number, exp: number): Promise<Replay> {
    const { nonces, once } = this.shared!;
    const ttl = Math.max(1, exp - this.now());
    try {
      if (nc === 0)
        return (await once.claim(`nonce:${nonce}`, ttl))
          ? OK
          : { ok: false, why: 'stale', detail: 'nonce already used without qop' };
      const v = await nonces.accept(nonce, nc, ttl);
      if (v === 'ok') return OK;
      if (v === 'full') return { ok: false, why: 'stale', detail: 'too many nonces in use' };
      return { ok: false, why: 'bad', detail: 'replayed nonce count' };
    } catch (e) {
      return { ok: false, why: 'unavailable', detail: `replay state unavailable (${(e as Error).message})` };
    }
  }

  /** Number of nonces whose replay state is held. */
  tracked(): number {
    return this.local.tracked();
  }
}

/**
 * digest-uri against the Request-URI: equal (case of scheme/host aside), or the Request-URI without its user part
 * (`sip:host:port` for `sip:user@host:port`: sipp and some UAs digest the server's URI). Replay protection does not
 * depend on this check (nonce + nc are tracked).
 */
export function sameUri(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return true;
  const colon = y.indexOf(':');
  const at = y.indexOf('@');
  if (colon < 0 || at < 0) return false;
  const hostForm = y.slice(0, colon + 1) + y.slice(at + 1);
  return x === hostForm || x === hostForm.split(';')[0];
}
