// Stream (TCP/TLS) and WebSocket (RFC 7118) connections.
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { parseMessage, SipStreamFramer } from '../message/index.js';
import type { ParseResult } from '../message/index.js';
import type { SipSource, SipTransport } from './types.js';

const CRLF = Buffer.from('\r\n', 'latin1');
/** A peer that does not read what we send: close it beyond this much queued output. */
const MAX_QUEUED = 1 << 20;

export interface ConnHooks {
  /** `raw`: the bytes of the message as framed (handed to another worker unchanged when it owns the message). */
  message(result: ParseResult, src: SipSource, conn: Connection, raw: Buffer): void;
  closed(conn: Connection): void;
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
  now(): number;
}

export abstract class Connection {
  readonly src: SipSource;
  /** Time of the last bytes received. */
  lastRx: number;
  /** Time since when an incomplete message has been pending (-1: none). */
  partialSince = -1;
  /** Messages received (0 = never spoke SIP: short idle timeout). */
  messages = 0;
  closed = false;
  /** Outbound connection we opened. */
  readonly outbound: boolean;

  constructor(
    readonly id: string,
    readonly transport: SipTransport,
    remoteIp: string,
    remotePort: number,
    localIp: string,
    localPort: number,
    outbound: boolean,
    protected readonly hooks: ConnHooks,
  ) {
    // One SipSource per connection, shared by all its messages (treat it as read-only).
    this.src = { transport, ip: remoteIp, port: remotePort, connId: id, localIp, localPort };
    this.lastRx = hooks.now();
    this.outbound = outbound;
  }

  get remoteKey(): string {
    return remoteKey(this.transport, this.src.ip, this.src.port);
  }

  abstract write(buf: Buffer): boolean;
  abstract close(reason: string): void;

  protected gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.hooks.closed(this);
  }
}

export function remoteKey(t: SipTransport, ip: string, port: number): string {
  return t + '|' + ip + '|' + port;
}

/** TCP or TLS connection framed with SipStreamFramer (RFC 3261 §18.3), CRLF keep-alives (RFC 5626). */
export class StreamConnection extends Connection {
  private readonly framer: SipStreamFramer;

  constructor(
    id: string,
    transport: 'tcp' | 'tls',
    private readonly sock: Socket,
    remoteIp: string,
    remotePort: number,
    localIp: string,
    localPort: number,
    outbound: boolean,
    maxMessageSize: number,
    hooks: ConnHooks,
  ) {
    super(id, transport, remoteIp, remotePort, localIp, localPort, outbound, hooks);
    this.framer = new SipStreamFramer({ maxMessageSize });
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30000); // detects half-open peers
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (err) => hooks.debug({ err: err.message, conn: id }, 'SIP connection error'));
    sock.on('close', () => this.gone());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    const now = this.hooks.now();
    this.lastRx = now;
    const events = this.framer.push(chunk);
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (ev.type === 'message') {
        this.messages++;
        this.hooks.message(ev.result, this.src, this, ev.data);
        if (this.closed) return;
      } else if (ev.type === 'keepalive') {
        if (ev.ping) this.write(CRLF); // RFC 5626 §3.5.1: CRLFCRLF ping → CRLF pong
      } else {
        this.hooks.debug({ conn: this.id, status: ev.status, reason: ev.reason }, 'SIP stream framing error, closing');
        this.close(ev.reason);
        return;
      }
    }
    this.partialSince = this.framer.buffered > 0 ? (this.partialSince < 0 ? now : this.partialSince) : -1;
  }

  write(buf: Buffer): boolean {
    if (this.closed || this.sock.destroyed) return false;
    if (this.sock.writableLength > MAX_QUEUED) {
      this.close('peer does not read');
      return false;
    }
    this.sock.write(buf);
    return true;
  }

  close(reason: string): void {
    if (!this.sock.destroyed) {
      this.hooks.debug({ conn: this.id, reason }, 'SIP connection closed');
      this.sock.destroy();
    }
    this.gone();
  }
}

/** WebSocket connection (RFC 7118): one SIP message per WebSocket message, subprotocol "sip". */
export class WsConnection extends Connection {
  constructor(
    id: string,
    transport: 'ws' | 'wss',
    private readonly ws: WebSocket,
    remoteIp: string,
    remotePort: number,
    localIp: string,
    localPort: number,
    hooks: ConnHooks,
  ) {
    super(id, transport, remoteIp, remotePort, localIp, localPort, false, hooks);
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onMessage(data));
    ws.on('error', (err) => hooks.debug({ err: err.message, conn: id }, 'SIP WebSocket error'));
    ws.on('close', () => this.gone());
  }

  private onMessage(data: Buffer | ArrayBuffer | Buffer[]): void {
    if (this.closed) return;
    this.lastRx = this.hooks.now();
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    // Keep-alive CRLFs (not standard on WS, but some clients send them): ignore.
    let allCrlf = true;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== 13 && c !== 10) {
        allCrlf = false;
        break;
      }
    }
    if (allCrlf) return;
    this.messages++;
    this.hooks.message(parseMessage(buf), this.src, this, buf);
  }

  write(buf: Buffer): boolean {
    if (this.closed || this.ws.readyState !== 1 /* OPEN */) return false;
    if (this.ws.bufferedAmount > MAX_QUEUED) {
      this.close('peer does not read');
      return false;
    }
    // Text frame when the message is valid UTF-8 (RFC 7118 §5.5), else binary.
    this.ws.send(buf, { binary: !isUtf8(buf) });
    return true;
  }

  close(reason: string): void {
    if (this.ws.readyState === 0 || this.ws.readyState === 1) {
      this.hooks.debug({ conn: this.id, reason }, 'SIP WebSocket closed');
      this.ws.terminate();
    }
    this.gone();
  }
}
