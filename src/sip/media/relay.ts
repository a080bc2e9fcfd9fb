/**
 * The RTP relay. A session relays one call: per media stream (m= line) two UDP sockets from the port pool,
 * socket "a" faces the caller (its port is what the caller's SDP shows) and socket "b" the callee. A packet
 * arriving on socket a is sent on from socket b to the callee's address, and back the other way; the received
 * Buffer itself is handed to send() (no copy).
 *
 * Symmetric RTP (NAT): each side's address starts as the one its SDP announced and is replaced by the source
 * address of the first packet that side sends (latching); after latching, packets from any other source are
 * dropped (no hijacking of the stream), until that side announces a new address (re-INVITE), which unlatches it;
 * the same SDP again (session refresh) keeps the latch.
 *
 * RTP timeout: once the session is armed (call connected), a side that is expected to send (its SDP direction is
 * sendrecv/sendonly on an active stream) and has sent nothing for `timeoutSeconds` makes the session call
 * `onTimeout` once (a vanished caller whose phone is gone, even while the other side still streams). A side on
 * hold (recvonly/inactive) is not expected to send. 0 disables the check.
 *
 * RTCP rides beside RTP: each relay socket has an RTCP socket on the port above it, and RTCP from a side goes to the
 * other side's RTCP address (its a=rtcp: line, else its RTP port + 1), latched on the first packet the same way.
 * With a=rtcp-mux the party sends RTCP on the RTP port, which the RTP sockets carry as they are.
 *
 * Taps (call listening, src/sip/monitor): a tap sees every RTP packet of the first stream that the relay forwards,
 * after it was sent on, with the side it came from; it must copy what it keeps (the Buffer is the one being sent)
 * and never changes what the parties get. `onClose` callbacks run once when the session is released (call end).
 */
import type { Socket, RemoteInfo } from 'node:dgram';
import { PortPool, type BoundPair } from './ports.js';
import { parseSdp, rewriteSdp, type SdpStream } from './sdp.js';

export type Side = 'a' | 'b';

/** Sees a forwarded RTP packet of the first stream (read-only; copy what is kept). */
export type RtpTap = (from: Side, packet: Buffer) => void;

interface Peer {
  host: string;
  port: number;
  latched: boolean;
}

interface Stream {
  pair: Record<Side, BoundPair>;
  sock: Record<Side, Socket>;
  port: Record<Side, number>;
  peer: Record<Side, Peer | null>;
  /** where each side's RTCP goes (announced, then latched) */
  rtcpPeer: Record<Side, Peer | null>;
  /** the address each side's last SDP announced */
  announced: Record<Side, { host: string; port: number } | null>;
  /** whether that side is expected to send on this stream (by its last SDP) */
  sends: Record<Side, boolean>;
  packets: Record<Side, number>;
}

export interface RelayOptions {
  min: number;
  max: number;
  /** address the sockets bind to (default 0.0.0.0) */
  bindAddr?: string;
  /** seconds of silence before onTimeout (0: never) */
  timeoutSeconds: number;
  /** how often the timeout is checked (ms, default 1000) */
  checkMs?: number;
}

export class RelaySession {
  private readonly streams: Stream[] = [];
  private readonly last: Record<Side, number> = { a: 0, b: 0 };
  private armedAt = 0;
  private onTimeout?: () => void;
  private readonly taps = new Set<RtpTap>();
  private readonly closers = new Set<() => void>();
  closed = false;

  constructor(
    private readonly relay: RtpRelay,
    /** address written into SDP */
    readonly address: string,
  ) {}

  /** @internal adds a stream with its two bound socket pairs */
  addStream(a: BoundPair, b: BoundPair): void {
    const s: Stream = {
      pair: { a, b },
      sock: { a: a.socket, b: b.socket },
      port: { a: a.port, b: b.port },
      peer: { a: null, b: null },
      rtcpPeer: { a: null, b: null },
      announced: { a: null, b: null },
      sends: { a: true, b: true },
      packets: { a: 0, b: 0 },
    };
    this.streams.push(s);
    this.listen(s, 'a');
    this.listen(s, 'b');
    this.listenRtcp(s, 'a');
    this.listenRtcp(s, 'b');
  }

  /** RTCP of `side` to the other side's RTCP address (latched like RTP; not counted as media for the timeout). */
  private listenRtcp(s: Stream, side: Side): void {
    const other: Side = side === 'a' ? 'b' : 'a';
    const sock = s.pair[side].rtcp;
    sock.on('message', (msg: Buffer, r: RemoteInfo) => {
      let p = s.rtcpPeer[side];
      if (!p || !p.latched) {
        p = { host: r.address, port: r.port, latched: true };
        s.rtcpPeer[side] = p;
      } else if (p.port !== r.port || p.host !== r.address) return;
      const to = s.rtcpPeer[other];
      if (!to || !to.port) return;
      s.pair[other].rtcp.send(msg, to.port, to.host);
    });
    sock.on('error', () => undefined);
  }

  private listen(s: Stream, side: Side): void {
    const other: Side = side === 'a' ? 'b' : 'a';
    s.sock[side].on('message', (msg: Buffer, r: RemoteInfo) => {
      let p = s.peer[side];
      if (!p || !p.latched) {
        p = { host: r.address, port: r.port, latched: true };
        s.peer[side] = p;
      } else if (p.port !== r.port || p.host !== r.address) return; // not the latched source
      s.packets[side]++;
      this.last[side] = Date.now();
      const to = s.peer[other];
      if (to && to.port) s.sock[other].send(msg, to.port, to.host); // else: the other side is not known yet
      if (this.taps.size && s === this.streams[0]) for (const t of this.taps) t(side, msg);
    });
    s.sock[side].on('error', () => undefined);
  }

  /** Adds a tap on the first stream's RTP; returns the function that removes it. */
  tap(fn: RtpTap): () => void {
    if (this.closed) return () => undefined;
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  /** Runs `fn` once when the session is released (at once when it already is); returns the function that cancels it. */
  onClose(fn: () => void): () => void {
    if (this.closed) {
      fn();
      return () => undefined;
    }
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  /** Ports of the relay sockets facing `side`, by stream index. */
  ports(side: Side): number[] {
    return this.streams.map((s) => s.port[side]);
  }

  get streamCount(): number {
    return this.streams.length;
  }

  /** Packets received from `side` (all streams). */
  received(side: Side): number {
    return this.streams.reduce((n, s) => n + s.packets[side], 0);
  }

  /** The address `side` is reached at on stream `i` (announced or latched). */
  peer(side: Side, i = 0): { host: string; port: number; latched: boolean } | null {
    const p = this.streams[i]?.peer[side];
    return p ? { ...p } : null;
  }

  /**
   * An SDP `from` sent (offer or answer): learns its addresses (unlatching that side: it may have moved) and
   * returns the body for the other party, pointing at the relay sockets that face that other party.
   */
  sdp(from: Side, body: Buffer): Buffer {
    if (this.closed || !body.length) return body;
    const streams = parseSdp(body);
    if (!streams.length) return body;
    streams.forEach((st, i) => this.learn(from, i, st));
    const to: Side = from === 'a' ? 'b' : 'a';
    return rewriteSdp(body, this.address, this.ports(to));
  }

  private learn(side: Side, i: number, st: SdpStream): void {
    const s = this.streams[i];
    if (!s) return;
    s.sends[side] =
      st.port !== 0 && (st.direction === 'sendrecv' || st.direction === 'sendonly') && st.address !== '0.0.0.0';
    if (st.port === 0) return;
    const prev = s.announced[side];
    s.announced[side] = { host: st.address, port: st.port };
    // the same SDP again (session refresh, re-sent answer) keeps the latch; a new address unlatches
    if (prev && prev.host === st.address && prev.port === st.port && s.peer[side]) return;
    // announced address; replaced by the first packet's source (symmetric RTP)
    s.peer[side] = { host: st.address, port: st.port, latched: false };
    s.rtcpPeer[side] = { host: st.rtcp.address, port: st.rtcp.port, latched: false };
  }

  /** Starts the RTP timeout (call connected). */
  arm(onTimeout: () => void): void {
    this.onTimeout = onTimeout;
    this.armedAt = Date.now();
  }

  /** @internal timeout check (called by the relay's one interval) */
  check(now: number, timeoutMs: number): void {
    if (!this.onTimeout || this.closed || timeoutMs <= 0) return;
    for (const side of ['a', 'b'] as const) {
      const expected = this.streams.some((s) => s.sends[side]);
      if (!expected) continue;
      const since = Math.max(this.last[side], this.armedAt);
      if (now - since >= timeoutMs) {
        const cb = this.onTimeout;
        this.onTimeout = undefined;
        cb();
        return;
      }
    }
  }

  /** Closes the sockets and frees the ports. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.onTimeout = undefined;
    this.taps.clear();
    for (const s of this.streams) {
      this.relay.pool.release(s.pair.a);
      this.relay.pool.release(s.pair.b);
    }
    this.relay.forget(this);
    const closers = [...this.closers];
    this.closers.clear();
    for (const fn of closers) fn();
  }
}

/** The relay: a port pool, the open sessions and one timer checking their RTP timeouts. */
export class RtpRelay {
  readonly pool: PortPool;
  private readonly sessions = new Set<RelaySession>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: RelayOptions) {
    this.pool = new PortPool(o.min, o.max, o.bindAddr ?? '0.0.0.0');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session with `streams` media streams (2 port pairs each). Frees what it bound when the range runs out. */
  async open(address: string, streams = 1): Promise<RelaySession> {
    const s = new RelaySession(this, address);
    const got: BoundPair[] = [];
    try {
      for (let i = 0; i < Math.max(1, streams); i++) {
        const a = await this.pool.bind();
        got.push(a);
        const b = await this.pool.bind();
        got.push(b);
        s.addStream(a, b);
      }
    } catch (e) {
      for (const g of got) this.pool.release(g);
      throw e;
    }
    this.sessions.add(s);
    this.ensureTimer();
    return s;
  }

  /** @internal */
  forget(s: RelaySession): void {
    this.sessions.delete(s);
    if (!this.sessions.size && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  setTimeoutSeconds(s: number): void {
    this.o.timeoutSeconds = s;
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const s of [...this.sessions]) s.check(now, this.o.timeoutSeconds * 1000);
    }, this.o.checkMs ?? 1000);
    this.timer.unref();
  }

  /** Releases every session (server stop). */
  close(): void {
    for (const s of [...this.sessions]) s.release();
  }
}
