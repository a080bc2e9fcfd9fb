// SIP stack (layer 1): transports (UDP/TCP/TLS/WS/WSS) + RFC 3261 §17 transactions.
//
//   const stack = new SipStack({ bindAddr, udpPort, tcpPort, maxMessageSize, maxConnections, ... });
//   stack.onRequest((req, tx, src) => tx.respond(createResponse(req, 200)));
//   await stack.start();
//
// See docs/sip.md ("SIP stack").
import { createResponse, formatVia, nameIs, parseVia, serialize } from './message/index.js';
import type { ParseResult, SipMessage, SipRequest, Via } from './message/index.js';
import { RealTimers } from './transaction/timers.js';
import type { TimerService } from './transaction/timers.js';
import { TransactionLayer } from './transaction/layer.js';
import type { ClientTransaction, ServerTransaction } from './transaction/types.js';
import { TransportManager, type TransportOptions } from './transport/manager.js';
import { defaultPort, unbracket } from './transport/types.js';
import type { SipSource, SipTarget, SipTransport } from './transport/types.js';

export type { SipTransport, SipSource, SipTarget } from './transport/types.js';
export type { ServerTransaction, ClientTransaction } from './transaction/types.js';

/** The transport settings (ports, TLS, limits, timeouts) plus the stack's own: logging and timers. */
export interface StackOptions extends Omit<TransportOptions, 'warn' | 'debug'> {
  log?: { warn(o: object, m: string): void; debug?(o: object, m: string): void };
  /** RFC 3261 timer base values in ms (defaults T1 500, T2 4000, T4 5000). */
  timers?: { T1?: number; T2?: number; T4?: number };
  /** Timer implementation (tests inject FakeTimers). */
  timerService?: TimerService;
}

type RequestHandler = (req: SipRequest, tx: ServerTransaction, src: SipSource) => void;
type AckHandler = (req: SipRequest, src: SipSource) => void;

const NOLOG = (): void => undefined;

export class SipStack {
  private readonly transports: TransportManager;
  private readonly layer: TransactionLayer;
  private readonly timerSvc: TimerService;
  private requestHandler: RequestHandler | null = null;
  private ackHandler: AckHandler | null = null;
  private readonly warn: (o: object, m: string) => void;
  private readonly debug: (o: object, m: string) => void;
  private running = false;

  constructor(private readonly opts: StackOptions) {
    const log = opts.log;
    this.warn = log ? (o, m) => log.warn(o, m) : NOLOG;
    this.debug = log?.debug ? (o, m) => log.debug!(o, m) : NOLOG;
    this.timerSvc = opts.timerService ?? new RealTimers();
    this.transports = new TransportManager(
      {
        bindAddr: opts.bindAddr,
        udpPort: opts.udpPort,
        tcpPort: opts.tcpPort,
        tlsPort: opts.tlsPort,
        wsPort: opts.wsPort,
        wssPort: opts.wssPort,
        tls: opts.tls,
        tlsClient: opts.tlsClient,
        maxMessageSize: opts.maxMessageSize,
        maxConnections: opts.maxConnections,
        maxConnectionsPerIp: opts.maxConnectionsPerIp,
        publicHost: opts.publicHost,
        idleTimeoutMs: opts.idleTimeoutMs,
        silentTimeoutMs: opts.silentTimeoutMs,
        isBanned: opts.isBanned,
        refuseNew: opts.refuseNew,
        handoff: opts.handoff,
        warn: this.warn,
        debug: this.debug,
      },
      (r, src) => this.dispatch(r, src),
    );
    this.layer = new TransactionLayer(
      {
        timers: this.timerSvc,
        t: { T1: opts.timers?.T1 ?? 500, T2: opts.timers?.T2 ?? 4000, T4: opts.timers?.T4 ?? 5000 },
        send: (buf, target, onError) => this.transports.send(buf, target, onError),
        debug: this.debug,
      },
      {
        onRequest: (req, tx, src) => {
          if (this.requestHandler) this.requestHandler(req, tx, src);
          else tx.respond(createResponse(req, 503, 'Service Unavailable'));
        },
        onAck: (req, src) => this.ackHandler?.(req, src),
        warn: this.warn,
      },
    );
  }

  /** Binds the configured transports. Resolves with what is listening (port 0 → the random port chosen). */
  async start(): Promise<Array<{ transport: SipTransport; address: string; port: number }>> {
    if (this.running) throw new Error('SipStack already started');
    const l = await this.transports.start();
    this.running = true;
    return l;
  }

  /** Closes listeners and connections and drops every transaction (no more events). */
  async stop(): Promise<void> {
    this.running = false;
    this.layer.clear();
    if (this.timerSvc instanceof RealTimers) this.timerSvc.stop();
    await this.transports.stop();
  }

  /** Every new request that is not a retransmission and not an ACK to a 2xx: */
  onRequest(h: (req: SipRequest, tx: ServerTransaction, src: SipSource) => void): void {
    this.requestHandler = h;
  }

  /** ACKs for 2xx and stray requests without transaction (dialog layer): */
  onAck(h: (req: SipRequest, src: SipSource) => void): void {
    this.ackHandler = h;
  }

  /**
   * Client transaction (INVITE or non-INVITE by method). Adds the top Via (branch, rport) itself and
   * Max-Forwards: 70 when missing; the request object passed in is not modified. ACK is sent once,
   * without a transaction. Throws SipSerializeError for a request that cannot be serialized.
   */
  request(req: SipRequest, target: SipTarget): ClientTransaction {
    const local = this.transports.localAddress(target.transport) ?? {
      host: this.transports.host,
      port: defaultPort(target.transport),
    };
    return this.layer.request(req, target, local);
  }

  /** Sends a message as is (no Via added, no transaction), e.g. a 2xx retransmission or an ACK for a 2xx. */
  sendStateless(msg: SipMessage, target: SipTarget): void {
    this.transports.send(serialize(msg), target, (err) =>
      this.debug({ err: err.message, host: target.host, port: target.port }, 'SIP stateless send failed'),
    );
  }

  /** Where this stack can be reached on a transport (for Via/Contact): */
  localAddress(t: SipTransport): { host: string; port: number } | undefined {
    return this.transports.localAddress(t);
  }

  /** Open stream/WebSocket connections. */
  connections(): number {
    return this.transports.connectionCount();
  }

  /** False for a connection id another worker of `serve --workers N` holds. */
  ownsConnection(connId: string): boolean {
    return this.transports.handoff === null || connId.startsWith(this.transports.handoff.connPrefix);
  }

  /** The worker hand-off's counters, and the node relay's (`relay_*`); undefined without either. */
  handoffStats(): Record<string, number> | undefined {
    const h = this.transports.handoff;
    if (!h) return undefined;
    const out: Record<string, number> = { ...h.stats };
    if (h.relay) for (const [k, v] of Object.entries(h.relay.stats)) out[`relay_${k.toLowerCase()}`] = v;
    return out;
  }

  // ---- extras (additive) ----

  /** Called when a stream/WebSocket connection closes (e.g. to drop the bindings that used its connId). */
  onConnectionClosed(h: (connId: string, src: SipSource) => void): void {
    this.transports.onClosed = h;
  }

  /** Closes a stream/WebSocket connection by id (SipSource.connId). */
  closeConnection(connId: string): boolean {
    return this.transports.closeConnection(connId);
  }

  /** Live transaction and connection counts (monitoring, tests). */
  stats(): { serverTransactions: number; completedCache: number; clientTransactions: number; connections: number } {
    return {
      serverTransactions: this.layer.server.size,
      completedCache: this.layer.lingering.size,
      clientTransactions: this.layer.client.size,
      connections: this.transports.connectionCount(),
    };
  }

  // ---- inbound path ----

  private dispatch(r: ParseResult, src: SipSource): void {
    try {
      this.dispatchInner(r, src);
    } catch (err) {
      // Never let one message take the socket handler (and the process) down.
      this.warn({ err: err instanceof Error ? err.message : String(err), ip: src.ip }, 'SIP message processing failed');
    }
  }

  private dispatchInner(r: ParseResult, src: SipSource): void {
    if (!r.ok) {
      if (r.drop || !r.partial || r.partial.method === 'ACK') {
        this.debug({ ip: src.ip, status: r.status, reason: r.reason }, 'SIP message dropped');
        return;
      }
      this.replyStateless(r.partial, r.status, r.reason, src);
      return;
    }
    const msg = r.msg;
    if (msg.type === 'response') {
      if (!this.layer.receiveResponse(msg))
        this.debug({ ip: src.ip, status: msg.status }, 'SIP response matched no transaction, dropped');
      return;
    }
    const core = msg.core!;
    const missing =
      core.via.length === 0
        ? 'Via'
        : core.cseq === null
          ? 'CSeq'
          : core.callId === null
            ? 'Call-ID'
            : core.from === null
              ? 'From'
              : core.to === null
                ? 'To'
                : null;
    if (missing !== null) {
      if (msg.method !== 'ACK' && core.via.length > 0)
        this.replyStateless(msg, 400, 'Missing ' + missing + ' header', src);
      return;
    }
    stampVia(msg, src);
    this.layer.receiveRequest(msg, src);
  }

  private replyStateless(req: SipRequest, status: number, reason: string, src: SipSource): void {
    try {
      const buf = serialize(createResponse(req, status, reason));
      this.transports.send(buf, { transport: src.transport, host: src.ip, port: src.port, connId: src.connId });
    } catch (err) {
      this.debug(
        { err: err instanceof Error ? err.message : String(err) },
        'SIP stateless error response not sendable',
      );
    }
  }
}

function setParam(v: Via, name: string, value: string): void {
  for (const p of v.params) {
    if (p.name.length === name.length && p.name.toLowerCase() === name) {
      p.value = value;
      return;
    }
  }
  v.params.push({ name, value });
}

/**
 * RFC 3261 §18.2.1 + RFC 3581: adds `received` when the sent-by host differs from the source address
 * (always when `rport` is present) and fills `rport` with the source port — in the top Via of both
 * `core` and `headers`, so responses built from the request carry them.
 */
export function stampVia(req: SipRequest, src: SipSource): void {
  const v = req.core!.via[0]!;
  const rport = v.rport !== undefined;
  if (!rport && unbracket(v.host) === src.ip) return;
  setParam(v, 'received', src.ip);
  v.received = src.ip;
  if (rport) {
    setParam(v, 'rport', String(src.port));
    v.rport = src.port;
  }
  const hs = req.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i]!;
    if (!nameIs(h.name, 'via')) continue;
    if (h.value.indexOf(',') < 0) h.value = formatVia(v);
    else {
      const all = parseVia(h.value);
      if (all && all.length > 0) {
        all[0] = v;
        h.value = all.map(formatVia).join(', ');
      }
    }
    return;
  }
}

/** The part of SipStack the SIP services and call layers use (a fake stack in unit tests implements the same). */
export type SipStackLike = Pick<
  SipStack,
  'start' | 'stop' | 'onRequest' | 'onAck' | 'request' | 'sendStateless' | 'localAddress' | 'connections'
>;
