/**
 * Worker hand-off of `serve --workers N`: every SIP message is handled by the worker that owns its Call-ID, and a
 * stream connection is written by the worker that holds it.
 *
 * - The owner of a Call-ID is the worker named by its marker (`w<k>.` at the start: every Call-ID a worker generates
 *   carries it, see generateCallId) when it names one of the N workers, else a stable hash (FNV-1a) of the Call-ID
 *   mod N. A phone's dialog (INVITE, its retransmissions, CANCEL, ACK, BYE, re-INVITE, SUBSCRIBE refreshes) thus
 *   always reaches one worker, and whatever comes back on a leg voxswitch created reaches the worker that made it.
 * - Each worker binds a private UDP socket on 127.0.0.1 and learns the others' ports from the primary (IPC). A
 *   message another worker owns is sent there raw inside an envelope naming its original source; the owner processes
 *   it as if it had arrived itself and answers over the shared UDP handle (or asks the holder of the connection).
 * - Connection ids carry their worker (`w2:tcp:17`); a send on another worker's connection goes to that worker's
 *   private port as a "send via" envelope, and a failure there comes back as an error envelope.
 *
 * Envelope: "VXH1", a kind byte (1 deliver, 2 send via, 3 send error), a 32-byte token (HKDF of the cluster secret;
 * compared in constant time, a wrong one is dropped and counted), a 16-bit header length, the header (latin1 fields
 * separated by LF), then the SIP bytes unchanged.
 *
 * With `siprelayport` the hand-off also carries stream messages and sends between nodes (relay.ts); a single
 * process then has a hand-off too (worker 1 of 1), for the relay only.
 */
import dgram from 'node:dgram';
import { hkdfSync, timingSafeEqual } from 'node:crypto';
import { parseMessage, setCallIdMarker, type ParseResult } from '../message/index.js';
import { NodeRelay, splitQualified, type RelayOptions } from './relay.js';
import type { SipSource, SipTarget, SipTransport } from './types.js';

export interface HandoffOptions {
  /** This worker, 1…count. */
  self: number;
  /** Workers of the cluster (N). */
  count: number;
  /** The secret the primary gives every worker (the envelope token is derived from it). */
  secret: Buffer;
  /** Told this worker's private port once it is bound. */
  announce(port: number): void;
  /** Subscribes to the private ports of the workers (index → port), sent again whenever a worker (re)starts. */
  peers?(listener: (ports: Record<string, number>) => void): void;
  /** Between nodes too (relay.ts): stream messages and sends for another node go to its relay port. */
  relay?: RelayOptions;
}

export interface HandoffSink {
  /** A message another worker received for this one (parsed here): processed as if it had arrived from `src`. */
  deliver(result: ParseResult, src: SipSource): void;
  /** Sends on a connection this worker holds (another worker asked); onError when it cannot. */
  sendLocal(payload: Buffer, target: SipTarget, onError: (err: Error) => void): void;
  warn(o: object, m: string): void;
}

export interface HandoffStats {
  /** Messages handed to their owner. */
  forwarded: number;
  /** Messages another worker handed to this one. */
  received: number;
  /** Sends over another worker's connection. */
  sentVia: number;
  /** Envelopes dropped (wrong token, malformed). */
  rejected: number;
}

const MAGIC = 0x56584831; // "VXH1"
const DELIVER = 1;
const SEND = 2;
const FAILED = 3;
const TOKEN_LEN = 32;
const HEAD = 4 + 1 + TOKEN_LEN + 2;
/** Largest UDP payload on loopback (IPv4). */
const MAX_DATAGRAM = 65507;
const TRANSPORTS = new Set<string>(['udp', 'tcp', 'tls', 'ws', 'wss']);

const STREAM = { stream: true } as const;
const isWs = (c: number | undefined) => c === 32 || c === 9;

/**
 * Where the Call-ID value is in a raw message: `[start, end)` of its first word, or null when there is no Call-ID
 * header before the end of the header section (the message is then handled where it arrived). Matches `Call-ID`
 * and the compact `i` in any case, whitespace before the colon and line folding before the value.
 */
export function scanCallId(buf: Buffer): [number, number] | null {
  const len = buf.length;
  let nl = buf.indexOf(10);
  while (nl >= 0 && nl + 1 < len) {
    const ls = nl + 1;
    const c = buf[ls]!;
    if (c === 13 || c === 10) return null; // the empty line: end of the headers
    let p = -1;
    const lower = c | 0x20;
    if (lower === 0x69) p = afterColon(buf, ls + 1);
    else if (lower === 0x63 && isCallIdName(buf, ls)) p = afterColon(buf, ls + 7);
    if (p >= 0) return valueAt(buf, p);
    nl = buf.indexOf(10, ls);
  }
  return null;
}

const CALL_ID = [0x63, 0x61, 0x6c, 0x6c, 0x2d, 0x69, 0x64]; // "call-id"

function isCallIdName(buf: Buffer, at: number): boolean {
  if (at + 7 > buf.length) return false;
  for (let i = 1; i < 7; i++) if ((buf[at + i]! | 0x20) !== CALL_ID[i]) return false;
  return true;
}

/** After a header name: optional SP/HTAB, then the colon; the position after it, or -1. */
function afterColon(buf: Buffer, p: number): number {
  while (isWs(buf[p])) p++;
  return buf[p] === 0x3a ? p + 1 : -1;
}

function valueAt(buf: Buffer, p: number): [number, number] | null {
  for (;;) {
    while (isWs(buf[p])) p++;
    if (buf[p] === 13 && buf[p + 1] === 10 && isWs(buf[p + 2])) p += 3;
    else if (buf[p] === 10 && isWs(buf[p + 1])) p += 2;
    else break;
  }
  let e = p;
  while (e < buf.length) {
    const c = buf[e];
    if (c === 13 || c === 10 || c === 32 || c === 9) break;
    e++;
  }
  return e > p ? [p, e] : null;
}

/** The worker (1…count) owning the Call-ID in `buf[s, e)`: its marker when valid, else FNV-1a mod count. */
export function ownerOf(buf: Buffer, s: number, e: number, count: number): number {
  if (buf[s] === 0x77) {
    let k = 0;
    let q = s + 1;
    while (q < e && buf[q]! >= 0x30 && buf[q]! <= 0x39 && k <= count) k = k * 10 + buf[q++]! - 0x30;
    if (q > s + 1 && q < e && buf[q] === 0x2e && k >= 1 && k <= count) return k;
  }
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return ((h >>> 0) % count) + 1;
}

/** ownerOf for a parsed Call-ID (ASCII, as the parser accepts it). */
export function ownerOfString(id: string, count: number): number {
  return ownerOf(Buffer.from(id, 'latin1'), 0, id.length, count);
}

/** The worker named by a connection id (`w2:tcp:17` → 2), 0 when it names none. */
export function ownerOfConnection(connId: string): number {
  if (connId.charCodeAt(0) !== 0x77) return 0;
  const colon = connId.indexOf(':');
  const k = colon > 1 ? Number(connId.slice(1, colon)) : NaN;
  return Number.isInteger(k) && k > 0 ? k : 0;
}

export class Handoff {
  readonly self: number;
  readonly count: number;
  /** Prefix of this worker's connection ids. */
  readonly connPrefix: string;
  readonly stats: HandoffStats = { forwarded: 0, received: 0, sentVia: 0, rejected: 0 };
  private readonly token: Buffer;
  private sock: dgram.Socket | null = null;
  private peerPorts = new Map<number, number>();
  /** Sends via another worker waiting for a possible error: sequence → callback and when it was sent. */
  private readonly pending = new Map<number, { onError: (err: Error) => void; at: number }>();
  private seq = 0;
  private warned = false;
  private sweeper: NodeJS.Timeout | null = null;
  /** With `siprelayport`: envelopes to and from the other nodes. */
  readonly relay: NodeRelay | null;

  constructor(
    private readonly o: HandoffOptions,
    private readonly sink: HandoffSink,
  ) {
    if (!(o.count >= 1 && o.self >= 1 && o.self <= o.count)) throw new Error(`worker ${o.self} of ${o.count}?`);
    this.self = o.self;
    this.count = o.count;
    this.connPrefix = `w${o.self}:`;
    this.token = Buffer.from(hkdfSync('sha256', o.secret, Buffer.alloc(0), 'voxswitch worker hand-off', TOKEN_LEN));
    this.relay = o.relay
      ? new NodeRelay(o.relay, {
          deliver: (payload, src) => this.deliverHere(payload, src),
          sendLocal: (payload, target, onError) => this.sendOnThisNode(payload, target, onError),
          warn: sink.warn,
        })
      : null;
    setCallIdMarker(`w${o.self}.` + (this.relay ? `${this.relay.tag}.` : ''));
    o.peers?.((ports) => this.setPeers(ports));
  }

  /** A message another node sent to this one: to the worker owning its Call-ID, else processed here. */
  private deliverHere(payload: Buffer, src: SipSource): void {
    const at = scanCallId(payload);
    const owner = at === null ? this.self : ownerOf(payload, at[0], at[1], this.count);
    if (owner !== this.self && this.forward(owner, payload, src)) return;
    const stream = src.transport === 'tcp' || src.transport === 'tls';
    this.sink.deliver(parseMessage(payload, stream ? STREAM : undefined), src);
  }

  /** A send another node asked for, on a connection of this node (this worker's or another's). */
  private sendOnThisNode(payload: Buffer, target: SipTarget, onError: (err: Error) => void): void {
    const k = this.heldElsewhere(target.connId);
    if (k > 0) this.sendVia(k, payload, target, onError);
    else this.sink.sendLocal(payload, target, onError);
  }

  /** Binds the private socket on 127.0.0.1 (random port) and announces it. */
  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      // exclusive: a socket of this process, not a handle shared through the cluster primary
      sock.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.sink.warn({ err: err.message }, 'SIP worker hand-off socket error'));
        sock.on('message', (buf, rinfo) => this.onEnvelope(buf, rinfo.port));
        try {
          sock.setRecvBufferSize(8 << 20);
        } catch {
          /* capped by the OS: keep the default */
        }
        this.sock = sock;
        this.sweeper = setInterval(() => this.sweep(), 1000);
        this.sweeper.unref();
        const port = sock.address().port;
        this.o.announce(port);
        if (this.relay === null) return resolve(port);
        this.relay.start().then(
          () => resolve(port),
          (e: unknown) => (sock.close(), reject(e)),
        );
      });
    });
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sock?.close();
    this.sock = null;
    this.pending.clear();
    this.relay?.stop();
    setCallIdMarker('');
  }

  /** The workers' private ports (index → port); a worker not listed is not running (its messages stay here). */
  setPeers(ports: Record<string, number>): void {
    const m = new Map<number, number>();
    for (const [k, v] of Object.entries(ports)) if (Number(k) !== this.self) m.set(Number(k), v);
    this.peerPorts = m;
  }

  /** A raw datagram: true when it was handed to the worker that owns its Call-ID. */
  routeDatagram(buf: Buffer, src: SipSource): boolean {
    if (this.count === 1) return false;
    const at = scanCallId(buf);
    if (at === null) return false;
    const owner = ownerOf(buf, at[0], at[1], this.count);
    return owner !== this.self && this.forward(owner, buf, src);
  }

  /** A message framed on a stream connection (already parsed): true when handed to its owner. */
  routeParsed(callId: string, raw: Buffer, src: SipSource): boolean {
    if (this.relay !== null && this.relay.routeParsed(callId, raw, src)) return true;
    const owner = ownerOfString(callId, this.count);
    return owner !== this.self && this.forward(owner, raw, src);
  }

  /** The other worker holding `connId` (sends on it go through sendVia), -1 for another node's (`@node/…`), else 0. */
  heldElsewhere(connId: string | undefined): number {
    if (connId === undefined) return 0;
    if (connId.charCodeAt(0) === 0x40) return this.relay !== null && splitQualified(connId) !== null ? -1 : 0;
    const k = ownerOfConnection(connId);
    return k !== 0 && k !== this.self ? k : 0;
  }

  /** Asks worker `owner` to write `payload` on the connection of `target`. */
  sendVia(owner: number, payload: Buffer, target: SipTarget, onError: (err: Error) => void): void {
    if (owner === -1) return this.relay!.sendVia(splitQualified(target.connId!)![0], payload, target, onError);
    const port = this.peerPorts.get(owner);
    if (port === undefined || this.sock === null)
      return fail(onError, `worker ${owner} holding connection ${target.connId} is not running`);
    const seq = (this.seq = (this.seq + 1) % 0x7fffffff);
    const head = this.head(SEND, `${target.transport}\n${target.host}\n${target.port}\n${target.connId ?? ''}\n${seq}`);
    if (head.length + payload.length > MAX_DATAGRAM) return fail(onError, 'message too large to hand to a worker');
    this.pending.set(seq, { onError, at: Date.now() });
    this.stats.sentVia++;
    this.sock.send([head, payload], port, '127.0.0.1');
  }

  private forward(owner: number, payload: Buffer, src: SipSource): boolean {
    const port = this.peerPorts.get(owner);
    if (port === undefined || this.sock === null) return false;
    const head = this.head(
      DELIVER,
      `${src.transport}\n${src.ip}\n${src.port}\n${src.localIp}\n${src.localPort}\n${src.connId ?? ''}`,
    );
    if (head.length + payload.length > MAX_DATAGRAM) return false;
    this.stats.forwarded++;
    this.sock.send([head, payload], port, '127.0.0.1');
    return true;
  }

  private head(kind: number, fields: string): Buffer {
    const n = Buffer.byteLength(fields, 'latin1');
    const b = Buffer.allocUnsafe(HEAD + n);
    b.writeUInt32BE(MAGIC, 0);
    b[4] = kind;
    this.token.copy(b, 5);
    b.writeUInt16BE(n, HEAD - 2);
    b.write(fields, HEAD, 'latin1');
    return b;
  }

  private onEnvelope(buf: Buffer, fromPort: number): void {
    if (
      buf.length < HEAD ||
      buf.readUInt32BE(0) !== MAGIC ||
      !timingSafeEqual(buf.subarray(5, 5 + TOKEN_LEN), this.token) ||
      HEAD + buf.readUInt16BE(HEAD - 2) > buf.length
    )
      return this.reject(fromPort);
    const end = HEAD + buf.readUInt16BE(HEAD - 2);
    const f = buf.toString('latin1', HEAD, end).split('\n');
    const payload = buf.subarray(end);
    const kind = buf[4];
    if (kind === DELIVER && f.length === 6 && TRANSPORTS.has(f[0]!)) {
      const src: SipSource = {
        transport: f[0] as SipTransport,
        ip: f[1]!,
        port: Number(f[2]),
        localIp: f[3]!,
        localPort: Number(f[4]),
      };
      if (f[5]) src.connId = f[5];
      this.stats.received++;
      // framed on a TCP/TLS stream: parsed as the framer does (WebSocket messages and datagrams as they are)
      const stream = src.transport === 'tcp' || src.transport === 'tls';
      this.sink.deliver(parseMessage(payload, stream ? STREAM : undefined), src);
    } else if (kind === SEND && f.length === 5 && TRANSPORTS.has(f[0]!)) {
      const target: SipTarget = { transport: f[0] as SipTransport, host: f[1]!, port: Number(f[2]) };
      if (f[3]) target.connId = f[3];
      const seq = f[4]!;
      this.sink.sendLocal(payload, target, (err) => {
        const back = this.head(FAILED, `${seq}\n${err.message.replace(/\n/g, ' ')}`);
        this.sock?.send(back, fromPort, '127.0.0.1');
      });
    } else if (kind === FAILED && f.length === 2) {
      const p = this.pending.get(Number(f[0]));
      if (p === undefined) return;
      this.pending.delete(Number(f[0]));
      p.onError(new Error(f[1]));
    } else this.reject(fromPort);
  }

  private reject(fromPort: number): void {
    this.stats.rejected++;
    if (this.warned) return;
    this.warned = true;
    this.sink.warn(
      { from: `127.0.0.1:${fromPort}` },
      'SIP worker hand-off: envelope with a wrong token or malformed, ignored (further ones are only counted)',
    );
  }

  /** An error comes back within milliseconds on loopback; a send not refused after 5 s went out. */
  private sweep(): void {
    const old = Date.now() - 5000;
    for (const [k, p] of this.pending) if (p.at < old) this.pending.delete(k);
  }
}

function fail(onError: (err: Error) => void, message: string): void {
  process.nextTick(onError, new Error(message));
}
