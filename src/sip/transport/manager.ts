// Transport manager: UDP socket, TCP/TLS/WS/WSS listeners, connection registry, sending, limits.
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { parseMessage, type ParseResult } from '../message/index.js';
import { Connection, StreamConnection, WsConnection, remoteKey } from './connection.js';
import type { ConnHooks } from './connection.js';
import { Handoff, type HandoffOptions } from './handoff.js';
import { earlyRefusal, isNewRequestCandidate, type EarlyGate } from './refuse.js';
import { deferError, firstInterfaceIPv4, isUnspecified, wsOnlyHandler } from './netutil.js';
import { defaultPort, normalizeIp, unbracket } from './types.js';
import type { SipSource, SipTarget, SipTransport } from './types.js';

export interface TransportOptions {
  bindAddr: string;
  /** Negative = disabled; 0 = random port. */
  udpPort: number;
  tcpPort: number;
  /** undefined = disabled; 0 = random. */
  tlsPort?: number;
  wsPort?: number;
  wssPort?: number;
  tls?: { cert: Buffer; key: Buffer };
  /** Outbound TLS connections (to trunks): certificate verification (default on). */
  tlsClient?: { rejectUnauthorized?: boolean; ca?: Buffer };
  maxMessageSize: number;
  maxConnections: number;
  /** Most inbound TCP/TLS/WS connections from one address (default DEFAULT_MAX_CONNECTIONS_PER_IP). */
  maxConnectionsPerIp?: number;
  /** Host to put in Via/Contact when the bind address is unspecified. */
  publicHost?: string;
  /** Close a connection idle (nothing received) for this long. Default 3 900 000 ms (> 1 h registrations). */
  idleTimeoutMs?: number;
  /** Close a connection that sent no complete SIP message / kept a partial message for this long. Default 32 000 ms. */
  silentTimeoutMs?: number;
  isBanned?: (ip: string) => boolean;
  /** Overload: new INVITE/REGISTER datagrams refused 503 before they are parsed (./refuse.ts). */
  refuseNew?: EarlyGate;
  /** One worker of `serve --workers N`: messages go to the worker owning their Call-ID (handoff.ts). */
  handoff?: HandoffOptions;
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export type Sink = (result: ParseResult, src: SipSource) => void;

export interface Listening {
  transport: SipTransport;
  address: string;
  port: number;
}

const NOOP = (): void => undefined;
/** One address may hold this many inbound connections unless maxConnectionsPerIp says otherwise. */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 100;

export class TransportManager {
  private udp: dgram.Socket | null = null;
  private readonly servers: Array<net.Server | http.Server> = [];
  private readonly wss: WebSocketServer[] = [];
  readonly conns = new Map<string, Connection>();
  private readonly byRemote = new Map<string, Connection>();
  /** Accepted raw sockets not yet registered (TLS handshakes, WS upgrades) count against the limit too. */
  private pendingSockets = 0;
  /** Open inbound sockets per remote address (counted from accept to close). */
  private readonly perIp = new Map<string, number>();
  private readonly handshaking = new Map<string, () => void>();
  private nextId = 1;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly listening = new Map<SipTransport, Listening>();
  private readonly hooks: ConnHooks;
  private readonly advertised: string;
  private readonly udpSrcLocal: { ip: string; port: number } = { ip: '', port: 0 };
  private readonly idleMs: number;
  /** Called when a stream/WebSocket connection goes away. */
  onClosed: ((connId: string, src: SipSource) => void) | null = null;
  private stopping = false;
  private readonly silentMs: number;
  /** With workers: hand-off to the owner of each message and of each connection; null in a single process. */
  readonly handoff: Handoff | null;
  /** Prefix of this process's connection ids (`w2:` in worker 2, else empty). */
  private readonly idPrefix: string;

  constructor(
    private readonly o: TransportOptions,
    private readonly sink: Sink,
  ) {
    this.idleMs = o.idleTimeoutMs ?? 3_900_000;
    this.silentMs = o.silentTimeoutMs ?? 32_000;
    const bind = unbracket(o.bindAddr || '0.0.0.0');
    this.advertised = o.publicHost ?? (isUnspecified(bind) ? (firstInterfaceIPv4() ?? '127.0.0.1') : bind);
    this.handoff = o.handoff
      ? new Handoff(o.handoff, {
          deliver: sink,
          sendLocal: (payload, target, onError) => this.sendStream(payload, target, onError),
          warn: o.warn,
        })
      : null;
    this.idPrefix = this.handoff?.connPrefix ?? '';
    this.hooks = {
      message: (r, src, conn, raw) => {
        if (o.isBanned?.(src.ip)) {
          conn.close('banned');
          return;
        }
        const h = this.handoff;
        const callId = h !== null && r.ok ? r.msg.core?.callId : null;
        if (callId && h!.routeParsed(callId, raw, src)) return;
        this.sink(r, src);
      },
      closed: (conn) => {
        this.conns.delete(conn.id);
        const k = conn.remoteKey;
        if (this.byRemote.get(k) === conn) this.byRemote.delete(k);
        if (this.onClosed !== null && !this.stopping) {
          try {
            this.onClosed(conn.id, conn.src);
          } catch (err) {
            o.warn({ err: err instanceof Error ? err.message : String(err) }, 'SIP connection-closed handler threw');
          }
        }
      },
      warn: o.warn,
      debug: o.debug,
      now: () => performance.now(),
    };
  }

  /** Host advertised in Via/Contact. */
  get host(): string {
    return this.advertised;
  }

  localAddress(t: SipTransport): { host: string; port: number } | undefined {
    const l = this.listening.get(t);
    return l ? { host: this.advertised, port: l.port } : undefined;
  }

  connectionCount(): number {
    return this.conns.size;
  }

  async start(): Promise<Listening[]> {
    const o = this.o;
    const bind = unbracket(o.bindAddr || '0.0.0.0');
    try {
      if (o.udpPort >= 0) await this.startUdp(bind, o.udpPort);
      await this.handoff?.start();
      if (o.tcpPort >= 0) await this.listen('tcp', net.createServer({ noDelay: true }), bind, o.tcpPort);
      if (o.tlsPort !== undefined || o.wssPort !== undefined) {
        if (!o.tls) throw new Error('SIP TLS/WSS port configured but no certificate/key (tlscert/tlskey)');
      }
      if (o.tlsPort !== undefined) {
        const srv = tls.createServer({ cert: o.tls!.cert, key: o.tls!.key, handshakeTimeout: 10000 });
        await this.listen('tls', srv, bind, o.tlsPort);
      }
      if (o.wsPort !== undefined) await this.listenWs('ws', http.createServer(wsOnlyHandler), bind, o.wsPort);
      if (o.wssPort !== undefined)
        await this.listenWs(
          'wss',
          https.createServer({ cert: o.tls!.cert, key: o.tls!.key }, wsOnlyHandler),
          bind,
          o.wssPort,
        );
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    return [...this.listening.values()];
  }

  private startUdp(bind: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: net.isIPv6(bind) ? 'udp6' : 'udp4' });
      sock.once('error', reject);
      sock.bind(port, bind, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.o.warn({ err: err.message }, 'SIP UDP socket error'));
        try {
          sock.setRecvBufferSize(8 << 20);
          sock.setSendBufferSize(4 << 20);
        } catch {
          /* capped by the OS (net.core.rmem_max): keep the default */
        }
        const a = sock.address();
        this.udpSrcLocal.ip = normalizeIp(a.address);
        this.udpSrcLocal.port = a.port;
        this.listening.set('udp', { transport: 'udp', address: a.address, port: a.port });
        sock.on('message', (buf, rinfo) => this.onDatagram(buf, rinfo));
        this.udp = sock;
        resolve();
      });
    });
  }

  private onDatagram(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const ip = normalizeIp(rinfo.address);
    if (this.o.isBanned !== undefined && this.o.isBanned(ip)) return;
    // Keep-alives (CRLF / CRLFCRLF datagrams) and tiny garbage: ignore.
    if (buf.length < 4 || (buf[0] === 13 && buf[1] === 10 && buf.length <= 4)) return;
    const src: SipSource = {
      transport: 'udp',
      ip,
      port: rinfo.port,
      localIp: this.udpSrcLocal.ip,
      localPort: this.udpSrcLocal.port,
    };
    if (buf.length > this.o.maxMessageSize) {
      const r = parseMessage(buf);
      if (r.ok && r.msg.type === 'request')
        this.sink({ ok: false, status: 513, reason: 'Message Too Large', partial: r.msg }, src);
      return;
    }
    const no = this.o.refuseNew && isNewRequestCandidate(buf) && earlyRefusal(this.o.refuseNew, buf, src);
    if (no) return this.send(no, { transport: 'udp', host: src.ip, port: src.port });
    if (this.handoff !== null && this.handoff.routeDatagram(buf, src)) return;
    this.sink(parseMessage(buf), src);
  }

  private admit(sock: Duplex & { remoteAddress?: string }): boolean {
    const ip = normalizeIp(sock.remoteAddress);
    if (!ip || this.o.isBanned?.(ip)) return false;
    if (this.conns.size + this.pendingSockets >= this.o.maxConnections) {
      this.o.debug({ ip, max: this.o.maxConnections }, 'SIP connection limit reached, refusing');
      return false;
    }
    const max = this.o.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP;
    const open = this.perIp.get(ip) ?? 0;
    if (open >= max) {
      this.o.debug({ ip, max }, 'SIP connections per address limit reached, refusing');
      return false;
    }
    this.perIp.set(ip, open + 1);
    sock.once('close', () => {
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });
    return true;
  }

  private listen(transport: 'tcp' | 'tls', srv: net.Server, bind: string, port: number): Promise<void> {
    // Raw connection (before any TLS handshake): bans and limits apply here.
    srv.on('connection', (sock: net.Socket) => {
      if (!this.admit(sock)) {
        sock.destroy();
        return;
      }
      if (transport === 'tcp') {
        this.register(transport, sock, false);
        return;
      }
      // TLS: counted as pending until the handshake completes or the socket closes.
      const k = (sock.remoteAddress ?? '') + '|' + (sock.remotePort ?? 0);
      this.pendingSockets++;
      let counted = true;
      const done = (): void => {
        if (!counted) return;
        counted = false;
        this.pendingSockets--;
        if (this.handshaking.get(k) === done) this.handshaking.delete(k);
      };
      this.handshaking.set(k, done);
      sock.once('close', done);
    });
    if (transport === 'tls') {
      srv.on('secureConnection', (ts: tls.TLSSocket) => {
        this.handshaking.get((ts.remoteAddress ?? '') + '|' + (ts.remotePort ?? 0))?.();
        this.register('tls', ts, false);
      });
      srv.on('tlsClientError', (err) => this.o.debug({ err: err.message }, 'SIP TLS handshake failed'));
    }
    srv.on('error', (err) => this.o.warn({ err: err.message, transport }, 'SIP listener error'));
    return this.bindServer(transport, srv, bind, port);
  }

  private bindServer(
    transport: SipTransport,
    srv: net.Server | http.Server,
    bind: string,
    port: number,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, bind, () => {
        srv.off('error', reject);
        const a = srv.address() as net.AddressInfo;
        this.listening.set(transport, { transport, address: a.address, port: a.port });
        this.servers.push(srv);
        resolve();
      });
    });
  }

  private listenWs(transport: 'ws' | 'wss', srv: http.Server, bind: string, port: number): Promise<void> {
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.o.maxMessageSize,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.wss.push(wss);
    srv.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
      const s = sock as net.Socket;
      // RFC 7118 §4.1: the client must offer the "sip" subprotocol.
      const protos = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim().toLowerCase());
      if (!this.admit(s)) {
        s.destroy();
        return;
      }
      if (!protos.includes('sip')) {
        const body = 'WebSocket subprotocol must be "sip" (RFC 7118)\n';
        s.end(
          'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ' +
            body.length +
            '\r\n\r\n' +
            body,
        );
        return;
      }
      this.pendingSockets++;
      let counted = true;
      const done = (): void => {
        if (counted) ((counted = false), this.pendingSockets--);
      };
      s.once('close', done); // failed handshakes destroy the socket without calling back
      wss.handleUpgrade(req, s, head, (ws: WebSocket) => {
        done();
        const id = this.idPrefix + transport + ':' + this.nextId++;
        const ip = normalizeIp(s.remoteAddress);
        const conn = new WsConnection(
          id,
          transport,
          ws,
          ip,
          s.remotePort ?? 0,
          normalizeIp(s.localAddress),
          s.localPort ?? 0,
          this.hooks,
        );
        this.add(conn);
      });
    });
    srv.on('connection', (s: net.Socket) => {
      if (this.o.isBanned?.(normalizeIp(s.remoteAddress))) s.destroy();
    });
    srv.on('error', (err) => this.o.warn({ err: err.message, transport }, 'SIP listener error'));
    srv.headersTimeout = 10000;
    srv.requestTimeout = 10000;
    return this.bindServer(transport, srv, bind, port);
  }

  private register(
    transport: 'tcp' | 'tls',
    sock: net.Socket,
    outbound: boolean,
    rk?: { ip: string; port: number },
  ): StreamConnection {
    const id = this.idPrefix + transport + ':' + this.nextId++;
    const ip = rk?.ip ?? normalizeIp(sock.remoteAddress);
    const port = rk?.port ?? sock.remotePort ?? 0;
    const conn = new StreamConnection(
      id,
      transport,
      sock,
      ip,
      port,
      normalizeIp(sock.localAddress),
      sock.localPort ?? 0,
      outbound,
      this.o.maxMessageSize,
      this.hooks,
    );
    this.add(conn);
    return conn;
  }

  private add(conn: Connection): void {
    this.conns.set(conn.id, conn);
    this.byRemote.set(conn.remoteKey, conn);
  }

  /** Closes connections idle too long, silent since they opened, or stuck on a partial message. */
  private sweep(): void {
    const now = performance.now();
    for (const c of this.conns.values()) {
      const idle = now - c.lastRx;
      if (c.partialSince >= 0 && now - c.partialSince > this.silentMs) c.close('incomplete message timeout');
      else if (c.messages === 0 && !c.outbound && idle > this.silentMs) c.close('no SIP message received');
      else if (idle > this.idleMs) c.close('idle timeout');
    }
  }

  /** Closes a connection by id (e.g. when its binding expires). */
  closeConnection(id: string): boolean {
    const c = this.conns.get(id);
    if (!c) return false;
    c.close('closed by the application');
    return true;
  }

  /** Sends bytes to a target (§18.1.1 / §18.2.2): reuses connId or an existing connection, else connects (TCP/TLS). */
  send(buf: Buffer, target: SipTarget, onError: (err: Error) => void = NOOP): void {
    const t = target.transport;
    if (t === 'udp') {
      const udp = this.udp;
      if (udp === null) return deferError(onError, new Error('UDP transport is not running'));
      const host = unbracket(target.host);
      // Literal IPs: no callback, so Node can use the synchronous uv_udp_try_send fast path (errors,
      // rare on unconnected UDP sockets, reach the socket 'error' listener). Hostnames need DNS: callback.
      if (net.isIP(host) !== 0) udp.send(buf, target.port, host);
      else
        udp.send(buf, target.port, host, (err) => {
          if (err) onError(err);
        });
      return;
    }
    const elsewhere = this.handoff?.heldElsewhere(target.connId) ?? 0;
    if (elsewhere !== 0) return this.handoff!.sendVia(elsewhere, buf, target, onError);
    this.sendStream(buf, target, onError);
  }

  /** A stream/WebSocket send from this process: its connection by id or remote address, else a new one. */
  private sendStream(buf: Buffer, target: SipTarget, onError: (err: Error) => void): void {
    const t = target.transport;
    if (t === 'udp') return this.send(buf, target, onError);
    const host = unbracket(target.host);
    let conn: Connection | undefined;
    if (target.connId !== undefined) {
      conn = this.conns.get(target.connId);
      if (conn !== undefined && conn.transport !== t) conn = undefined;
    }
    conn ??= this.byRemote.get(remoteKey(t, host, target.port));
    if (conn !== undefined && !conn.closed) {
      if (!conn.write(buf)) deferError(onError, new Error('connection ' + conn.id + ' is closed'));
      return;
    }
    if (t === 'ws' || t === 'wss')
      return deferError(onError, new Error('no open WebSocket connection to ' + host + ':' + target.port));
    this.connect(t, host, target.port || defaultPort(t), buf, onError);
  }

  private connect(t: 'tcp' | 'tls', host: string, port: number, buf: Buffer, onError: (err: Error) => void): void {
    if (this.conns.size + this.pendingSockets >= this.o.maxConnections) {
      return deferError(onError, new Error('SIP connection limit reached'));
    }
    const sock =
      t === 'tcp'
        ? net.connect({ host, port, noDelay: true })
        : tls.connect({
            host,
            port,
            servername: net.isIP(host) ? undefined : host,
            rejectUnauthorized: this.o.tlsClient?.rejectUnauthorized ?? true,
            ca: this.o.tlsClient?.ca,
          });
    const conn = this.register(t, sock, true, { ip: host, port });
    let connected = false;
    sock.once(t === 'tls' ? 'secureConnect' : 'connect', () => (connected = true));
    sock.once('error', (err) => {
      if (!connected) onError(err);
      conn.close('connect failed');
    });
    conn.write(buf);
  }

  async stop(): Promise<void> {
    this.stopping = true; // no onClosed flurry at shutdown
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const c of [...this.conns.values()]) c.close('stack stopped');
    this.conns.clear();
    this.byRemote.clear();
    const waits: Promise<void>[] = [];
    for (const srv of this.servers) {
      waits.push(new Promise((r) => srv.close(() => r())));
      if ('closeAllConnections' in srv) (srv as http.Server).closeAllConnections();
    }
    this.servers.length = 0;
    for (const w of this.wss) w.close();
    this.wss.length = 0;
    if (this.udp) {
      const u = this.udp;
      this.udp = null;
      waits.push(new Promise((r) => u.close(() => r())));
    }
    this.handoff?.stop();
    this.listening.clear();
    await Promise.all(waits);
    this.stopping = false;
  }
}
