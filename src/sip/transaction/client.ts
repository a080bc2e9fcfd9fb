// Client transactions (RFC 3261 §17.1, with the RFC 6026 "Accepted" state for INVITE).
import { EventEmitter } from 'node:events';
import { nameIs, serialize, splitHeaderValue } from '../message/index.js';
import type { SipHeader, SipRequest, SipResponse } from '../message/index.js';
import type { SipTarget } from '../transport/types.js';
import type { TimerHandle } from './timers.js';
import type { ClientTransaction, TxEnv } from './types.js';

abstract class ClientTxBase extends EventEmitter implements ClientTransaction {
  state: string;
  protected done = false;

  constructor(
    protected readonly env: TxEnv,
    readonly key: string,
    /** The request as sent (our Via on top). */
    readonly request: SipRequest,
    /** Serialized request (re-sent by the retransmission timers). */
    protected readonly buf: Buffer,
    readonly target: SipTarget,
    readonly reliable: boolean,
    initial: string,
  ) {
    super();
    this.state = initial;
  }

  abstract start(): void;
  abstract receive(res: SipResponse): void;

  protected send(buf: Buffer): void {
    this.env.send(buf, this.target, (err) => this.transportError(err));
  }

  protected transportError(err: Error): void {
    if (this.done) return;
    const live = this.state === 'trying' || this.state === 'proceeding' || this.state === 'calling';
    this.terminate();
    if (live) this.emit('transport-error', err);
  }

  protected timedOut(): void {
    if (this.done) return;
    this.terminate();
    this.emit('timeout');
  }

  terminate(): void {
    if (this.done) return;
    this.done = true;
    this.state = 'terminated';
    this.clearTimers();
    this.env.terminated(this.key, this, false);
  }

  protected abstract clearTimers(): void;
}

/** Non-INVITE client transaction (§17.1.2): Trying → Proceeding → Completed (Timer K) → Terminated. */
export class NonInviteClientTx extends ClientTxBase {
  private timerE: TimerHandle | null = null;
  private timerF: TimerHandle | null = null;
  private timerK: TimerHandle | null = null;
  private eInterval: number;

  constructor(env: TxEnv, key: string, request: SipRequest, buf: Buffer, target: SipTarget, reliable: boolean) {
    super(env, key, request, buf, target, reliable, 'trying');
    this.eInterval = env.t.T1;
  }

  start(): void {
    this.send(this.buf);
    if (this.done) return;
    if (!this.reliable) this.timerE = this.env.timers.set(this.eInterval, () => this.fireE());
    this.timerF = this.env.timers.setCoarse(64 * this.env.t.T1, () => ((this.timerF = null), this.timedOut()));
  }

  private fireE(): void {
    this.timerE = null;
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.send(this.buf);
    // Trying: double up to T2; Proceeding: T2.
    this.eInterval = this.state === 'trying' ? Math.min(2 * this.eInterval, this.env.t.T2) : this.env.t.T2;
    if (!this.done) this.timerE = this.env.timers.set(this.eInterval, () => this.fireE());
  }

  receive(res: SipResponse): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return; // Completed: absorb retransmissions
    if (res.status < 200) {
      this.state = 'proceeding';
      this.emit('provisional', res);
      return;
    }
    this.state = 'completed';
    this.timerE?.cancel();
    this.timerF?.cancel();
    this.timerE = this.timerF = null;
    if (this.reliable)
      this.terminate(); // Timer K = 0
    else this.timerK = this.env.timers.setCoarse(this.env.t.T4, () => ((this.timerK = null), this.terminate()));
    this.emit('final', res);
  }

  protected clearTimers(): void {
    this.timerE?.cancel();
    this.timerF?.cancel();
    this.timerK?.cancel();
    this.timerE = this.timerF = this.timerK = null;
  }
}

/** INVITE client transaction (§17.1.1 + RFC 6026): Calling → Proceeding → Completed/Accepted → Terminated. */
export class InviteClientTx extends ClientTxBase {
  private timerA: TimerHandle | null = null;
  private timerB: TimerHandle | null = null;
  private timerDM: TimerHandle | null = null;
  private aInterval: number;
  private ackBuf: Buffer | null = null;
  private cancelPending = false;
  private cancelSent = false;

  constructor(
    env: TxEnv,
    key: string,
    request: SipRequest,
    buf: Buffer,
    target: SipTarget,
    reliable: boolean,
    /** Starts a non-INVITE client transaction for a request whose top Via is already set (the CANCEL). */
    private readonly spawn: (req: SipRequest, target: SipTarget) => void,
  ) {
    super(env, key, request, buf, target, reliable, 'calling');
    this.aInterval = env.t.T1;
  }

  start(): void {
    this.send(this.buf);
    if (this.done) return;
    if (!this.reliable) this.timerA = this.env.timers.set(this.aInterval, () => this.fireA());
    this.timerB = this.env.timers.setCoarse(64 * this.env.t.T1, () => ((this.timerB = null), this.timedOut()));
  }

  private fireA(): void {
    this.timerA = null;
    if (this.state !== 'calling') return;
    this.send(this.buf);
    this.aInterval *= 2;
    if (!this.done) this.timerA = this.env.timers.set(this.aInterval, () => this.fireA());
  }

  receive(res: SipResponse): void {
    const st = res.status;
    switch (this.state) {
      case 'calling':
      case 'proceeding':
        if (st < 200) {
          // RFC 3261 §17.1.1.2: Timer B only runs in Calling; once the far end rings, its duration is the TU's (CANCEL)
          this.timerA?.cancel();
          this.timerB?.cancel();
          this.timerA = this.timerB = null;
          this.state = 'proceeding';
          this.emit('provisional', res);
          if (this.cancelPending && this.state === 'proceeding') this.sendCancel();
          return;
        }
        this.timerA?.cancel();
        this.timerB?.cancel();
        this.timerA = this.timerB = null;
        if (st < 300) {
          this.state = 'accepted';
          // Timer M: keep matching 2xx retransmissions / forks for the TU (which ACKs them).
          this.timerDM = this.env.timers.setCoarse(64 * this.env.t.T1, () => ((this.timerDM = null), this.terminate()));
          this.emit('final', res);
          return;
        }
        this.state = 'completed';
        this.ackBuf = serializeAck(this.request, res);
        this.send(this.ackBuf);
        if (!this.done) {
          if (this.reliable)
            this.terminate(); // Timer D = 0
          else
            this.timerDM = this.env.timers.setCoarse(
              Math.max(32000, 64 * this.env.t.T1),
              () => ((this.timerDM = null), this.terminate()),
            );
        }
        this.emit('final', res);
        return;
      case 'accepted':
        if (st >= 200 && st < 300) this.emit('final', res); // retransmitted or forked 2xx: the TU ACKs it
        return;
      case 'completed':
        if (st >= 300 && this.ackBuf) this.send(this.ackBuf); // retransmitted final: ACK again
        return;
      default:
        return;
    }
  }

  /** RFC 3261 §9.1: CANCEL once a provisional response arrived (deferred until then); no-op after a final. */
  cancel(): void {
    if (this.cancelSent) return;
    if (this.state === 'calling') this.cancelPending = true;
    else if (this.state === 'proceeding') this.sendCancel();
  }

  private sendCancel(): void {
    this.cancelPending = false;
    this.cancelSent = true;
    this.spawn(buildCancel(this.request), this.target);
  }

  protected clearTimers(): void {
    this.timerA?.cancel();
    this.timerB?.cancel();
    this.timerDM?.cancel();
    this.timerA = this.timerB = this.timerDM = null;
  }
}

function first(req: { headers: readonly SipHeader[] }, key: string): SipHeader | undefined {
  for (const h of req.headers) if (nameIs(h.name, key)) return h;
  return undefined;
}

/** CSeq number of a request (from core, or from the header when built by hand). */
function cseqNumber(req: SipRequest): string {
  if (req.core?.cseq) return String(req.core.cseq.seq);
  const v = first(req, 'cseq')?.value ?? '1';
  let i = 0;
  while (i < v.length && v.charCodeAt(i) >= 48 && v.charCodeAt(i) <= 57) i++;
  return i > 0 ? v.slice(0, i) : '1';
}

/** CANCEL for an INVITE (§9.1): same Request-URI, top Via, Route, Call-ID, From, To, CSeq number. */
export function buildCancel(invite: SipRequest): SipRequest {
  const headers: SipHeader[] = [];
  const via = first(invite, 'via');
  if (via) headers.push({ name: 'Via', value: topViaValue(via.value) });
  headers.push({ name: 'Max-Forwards', value: '70' });
  for (const h of invite.headers) if (nameIs(h.name, 'route')) headers.push({ name: 'Route', value: h.value });
  for (const k of ['from', 'to', 'call-id'] as const) {
    const h = first(invite, k);
    if (h) headers.push({ name: h.name, value: h.value });
  }
  headers.push({ name: 'CSeq', value: cseqNumber(invite) + ' CANCEL' });
  headers.push({ name: 'Content-Length', value: '0' });
  return { type: 'request', method: 'CANCEL', uri: invite.uri, version: 'SIP/2.0', headers, body: Buffer.alloc(0) };
}

/** ACK for a non-2xx final response (§17.1.1.3): To from the response, the rest from the INVITE. */
export function buildAck(invite: SipRequest, res: SipResponse): SipRequest {
  const headers: SipHeader[] = [];
  const via = first(invite, 'via');
  if (via) headers.push({ name: 'Via', value: topViaValue(via.value) });
  headers.push({ name: 'Max-Forwards', value: '70' });
  for (const h of invite.headers) if (nameIs(h.name, 'route')) headers.push({ name: 'Route', value: h.value });
  const from = first(invite, 'from');
  if (from) headers.push({ name: 'From', value: from.value });
  const to = first(res, 'to') ?? first(invite, 'to');
  if (to) headers.push({ name: 'To', value: to.value });
  const cid = first(invite, 'call-id');
  if (cid) headers.push({ name: 'Call-ID', value: cid.value });
  headers.push({ name: 'CSeq', value: cseqNumber(invite) + ' ACK' });
  headers.push({ name: 'Content-Length', value: '0' });
  return { type: 'request', method: 'ACK', uri: invite.uri, version: 'SIP/2.0', headers, body: Buffer.alloc(0) };
}

function serializeAck(invite: SipRequest, res: SipResponse): Buffer {
  return serialize(buildAck(invite, res));
}

/** First element of a Via header value (our Via is always a single value, but be safe). */
function topViaValue(v: string): string {
  return v.indexOf(',') < 0 ? v : (splitHeaderValue(v)[0] ?? v);
}

export type AnyClientTx = NonInviteClientTx | InviteClientTx;
