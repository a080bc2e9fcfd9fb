/**
 * Node relay (option `siprelayport`): the worker hand-off's envelopes between the nodes of one switch, so that a
 * phone on a TCP/TLS/WS connection held by node A is reached from node B, and what arrives on that connection for a
 * dialog of node B goes to B.
 *
 * - Every Call-ID a node generates carries its tag after the worker marker (`w2.<tag>.…`, the tag: 8 hex digits of
 *   SHA-256 of the node id); a message framed on a stream whose Call-ID names another node is sent to that node's
 *   relay port (DELIVER) with its source, the connection id qualified with the node (`@A/w1:tcp:3`).
 * - A send on such a qualified connection id is sent to the node holding it (SEND), which writes it on the
 *   connection (through its own worker hand-off when another worker holds it).
 * - A SEND names its sender and a request number; when the holder cannot write it (the connection closed), it
 *   answers FAILED with the reason, and the sender's transaction learns at once (not after its timer runs out).
 * - Envelope: "VXR1", kind, time (ms, float64 with sub-millisecond digits), HMAC-SHA256 over everything else with a
 *   key derived (HKDF) from data/server.key, which every node of the switch shares; a bad MAC, a time more than 60 s
 *   away or an envelope seen before (its MAC, remembered for two minutes) is dropped and counted. Datagrams are not
 *   relayed: a node sends to a UDP phone straight at its address.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { SipSource, SipTarget, SipTransport } from './types.js';

export interface RelayOptions {
  /** This node's id. */
  node: string;
  /** HMAC key, the same on every node. */
  key: Buffer;
  bindAddr: string;
  port: number;
  /** Where a node's relay listens (from its announcements). */
  addressOf(node: string): { host: string; port: number } | undefined;
  /** The node a Call-ID tag names. */
  nodeOfTag(tag: string): string | undefined;
}

export interface RelaySink {
  /** A message another node read for this one (raw, with its qualified source). */
  deliver(payload: Buffer, src: SipSource): void;
  /** Writes on a connection of this node (`target.connId` without the node part). */
  sendLocal(payload: Buffer, target: SipTarget, onError: (err: Error) => void): void;
  warn(o: object, m: string): void;
}

const MAGIC = 0x56585231; // "VXR1"
const DELIVER = 1;
const SEND = 2;
const FAILED = 3;
const MAC_AT = 4 + 1 + 8;
const HEAD = MAC_AT + 32 + 2;
const MAX_SKEW_MS = 60_000;
const TRANSPORTS = new Set<string>(['tcp', 'tls', 'ws', 'wss']);
/** How long a SEND waits for a FAILED answer before its entry is dropped (success is not answered). */
const FAILED_WAIT_MS = 10_000;

/** The Call-ID tag of a node. */
export function nodeTag(node: string): string {
  return createHash('sha256').update(node).digest('hex').slice(0, 8);
}

/** `@node/connId`: a connection another node holds. */
export function qualify(node: string, connId: string): string {
  return `@${node}/${connId}`;
}

/** [node, its connection id] of a qualified connection id, or null. */
export function splitQualified(connId: string): [string, string] | null {
  if (connId.charCodeAt(0) !== 0x40) return null;
  const i = connId.lastIndexOf('/');
  return i > 1 ? [connId.slice(1, i), connId.slice(i + 1)] : null;
}

/** The node tag of a generated Call-ID (`w<k>.<tag>.…`), or undefined. */
export function tagOfCallId(id: string): string | undefined {
  if (id.charCodeAt(0) !== 0x77) return undefined;
  const dot = id.indexOf('.');
  if (dot < 2 || id.charCodeAt(dot + 9) !== 0x2e) return undefined;
  const tag = id.slice(dot + 1, dot + 9);
  return /^[0-9a-f]{8}$/.test(tag) ? tag : undefined;
}

export class NodeRelay {
  readonly tag: string;
  readonly stats = { delivered: 0, received: 0, sentVia: 0, rejected: 0, replayed: 0, failed: 0 };
  private sock: dgram.Socket | null = null;
  private warned = false;
  /** MACs of the envelopes taken in this and the previous minute (a replay within the time window is refused). */
  private seen = new Set<string>();
  private seenBefore = new Set<string>();
  private rotateTimer?: NodeJS.Timeout;
  /** SENDs of this node that the holder may still answer FAILED for: number → error callback and when sent. */
  private readonly pending = new Map<number, { onError: (err: Error) => void; at: number }>();
  private nextId = 1;

  constructor(
    private readonly o: RelayOptions,
    private readonly sink: RelaySink,
  ) {
    this.tag = nodeTag(o.node);
  }

  get node(): string {
    return this.o.node;
  }

  /** Binds the relay port (shared by the workers of this node, like the SIP UDP socket). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(net.isIPv6(this.o.bindAddr) ? 'udp6' : 'udp4');
      sock.once('error', reject);
      sock.bind(this.o.port, this.o.bindAddr || '0.0.0.0', () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.sink.warn({ err: err.message }, 'SIP node relay socket error'));
        sock.on('message', (buf, rinfo) => this.onEnvelope(buf, rinfo.address));
        this.sock = sock;
        this.rotateTimer = setInterval(() => this.rotate(), MAX_SKEW_MS);
        this.rotateTimer.unref();
        resolve();
      });
    });
  }

  stop(): void {
    if (this.rotateTimer) clearInterval(this.rotateTimer);
    this.sock?.close();
    this.sock = null;
  }

  private rotate(): void {
    this.seenBefore = this.seen;
    this.seen = new Set();
    const old = Date.now() - FAILED_WAIT_MS;
    for (const [id, p] of this.pending) if (p.at < old) this.pending.delete(id);
  }

  /** A message framed on a stream whose Call-ID names another node: true when sent there. */
  routeParsed(callId: string, raw: Buffer, src: SipSource): boolean {
    const tag = tagOfCallId(callId);
    if (tag === undefined || tag === this.tag) return false;
    const node = this.o.nodeOfTag(tag);
    if (node === undefined) return false;
    const from: SipSource = { ...src, connId: src.connId ? qualify(this.o.node, src.connId) : undefined };
    const f = `${from.transport}\n${from.ip}\n${from.port}\n${from.localIp}\n${from.localPort}\n${from.connId ?? ''}`;
    if (!this.send(node, DELIVER, f, raw)) return false;
    this.stats.delivered++;
    return true;
  }

  /** Sends on a connection another node holds (`@node/connId`). */
  sendVia(node: string, payload: Buffer, target: SipTarget, onError: (err: Error) => void): void {
    const id = this.nextId++;
    const f = `${target.transport}\n${target.host}\n${target.port}\n${target.connId ?? ''}\n${this.o.node}\n${id}`;
    if (!this.send(node, SEND, f, payload))
      return void process.nextTick(onError, new Error(`node ${node} (its SIP relay) is not known or not reachable`));
    this.pending.set(id, { onError, at: Date.now() });
    this.stats.sentVia++;
  }

  private send(node: string, kind: number, fields: string, payload: Buffer): boolean {
    const to = this.o.addressOf(node);
    if (to === undefined || this.sock === null) return false;
    const n = Buffer.byteLength(fields, 'latin1');
    const head = Buffer.allocUnsafe(HEAD + n);
    head.writeUInt32BE(MAGIC, 0);
    head[4] = kind;
    // sub-millisecond time: two envelopes of the same bytes never share a MAC (the replay check keys on it)
    head.writeDoubleBE(performance.timeOrigin + performance.now(), 5);
    head.writeUInt16BE(n, HEAD - 2);
    head.write(fields, HEAD, 'latin1');
    this.mac(head, payload).copy(head, MAC_AT);
    this.sock.send([head, payload], to.port, to.host);
    return true;
  }

  private mac(head: Buffer, payload: Buffer): Buffer {
    return createHmac('sha256', this.o.key)
      .update(head.subarray(4, MAC_AT))
      .update(head.subarray(MAC_AT + 32))
      .update(payload)
      .digest();
  }

  private onEnvelope(buf: Buffer, from: string): void {
    if (buf.length < HEAD || buf.readUInt32BE(0) !== MAGIC) return this.reject(from);
    const end = HEAD + buf.readUInt16BE(HEAD - 2);
    if (end > buf.length) return this.reject(from);
    const head = buf.subarray(0, end);
    const payload = buf.subarray(end);
    if (!timingSafeEqual(this.mac(head, payload), buf.subarray(MAC_AT, MAC_AT + 32))) return this.reject(from);
    if (Math.abs(Date.now() - buf.readDoubleBE(5)) > MAX_SKEW_MS) return this.reject(from);
    const mac = buf.toString('latin1', MAC_AT, MAC_AT + 16);
    if (this.seen.has(mac) || this.seenBefore.has(mac)) {
      this.stats.replayed++;
      return this.reject(from);
    }
    this.seen.add(mac);
    const f = buf.toString('latin1', HEAD, end).split('\n');
    if (buf[4] === FAILED && f.length === 2) {
      const p = this.pending.get(Number(f[0]));
      this.pending.delete(Number(f[0]));
      this.stats.failed++;
      return p?.onError(new Error(f[1]));
    }
    if (!TRANSPORTS.has(f[0]!)) return this.reject(from);
    const transport = f[0] as SipTransport;
    if (buf[4] === DELIVER && f.length === 6) {
      const src: SipSource = { transport, ip: f[1]!, port: Number(f[2]), localIp: f[3]!, localPort: Number(f[4]) };
      if (f[5]) src.connId = f[5];
      this.stats.received++;
      this.sink.deliver(payload, src);
    } else if (buf[4] === SEND && f.length === 6) {
      const q = f[3] ? splitQualified(f[3]) : null;
      const target: SipTarget = { transport, host: f[1]!, port: Number(f[2]) };
      if (q && q[0] === this.o.node) target.connId = q[1];
      const [sender, id] = [f[4]!, f[5]!];
      this.sink.sendLocal(payload, target, (err) => {
        this.sink.warn({ err: err.message, connId: f[3], sender }, 'SIP node relay: send on a connection failed');
        // the sender's transaction is told (one line: the reason without line breaks)
        this.send(sender, FAILED, `${id}\n${err.message.replace(/[\r\n]+/g, ' ')}`, Buffer.alloc(0));
      });
    } else this.reject(from);
  }

  private reject(from: string): void {
    this.stats.rejected++;
    if (this.warned) return;
    this.warned = true;
    this.sink.warn(
      { from },
      'SIP node relay: envelope with a bad MAC, time or form, or a replay, ignored (further ones counted)',
    );
  }
}
