// Server transactions (RFC 3261 §17.2, with the RFC 6026 "Accepted" state for INVITE).
import { createResponse, serialize } from '../message/index.js';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { SipSource, SipTarget } from '../transport/types.js';
import type { TimerHandle } from './timers.js';
import type { ServerTransaction, TxEnv } from './types.js';

abstract class ServerTxBase implements ServerTransaction {
  state: string;
  cancels?: ServerTransaction;
  cancelled?: boolean;
  /** Last response sent (serialized), re-sent on request retransmissions. */
  protected last: Buffer | null = null;
  protected done = false;

  constructor(
    protected readonly env: TxEnv,
    readonly key: string,
    readonly request: SipRequest,
    readonly src: SipSource,
    /** Where responses go (RFC 3261 §18.2.2 / RFC 3581), computed by the layer. */
    readonly target: SipTarget,
    readonly reliable: boolean,
    initial: string,
  ) {
    this.state = initial;
  }

  abstract respond(res: SipResponse): void;
  /** A retransmission of the request arrived. */
  abstract retransmit(): void;

  protected send(buf: Buffer): void {
    this.env.send(buf, this.target, (err) => this.transportError(err));
  }

  protected transportError(err: Error): void {
    if (this.done) return;
    this.env.debug({ err: err.message, key: this.key }, 'SIP server transaction transport error');
    this.terminate();
  }

  protected ignored(res: SipResponse): void {
    this.env.debug(
      { status: res.status, state: this.state, method: this.request.method },
      'SIP response ignored: transaction already done',
    );
  }

  terminate(): void {
    if (this.done) return;
    this.done = true;
    this.state = 'terminated';
    this.clearTimers();
    this.env.terminated(this.key, this, true);
  }

  protected abstract clearTimers(): void;
}

/** Non-INVITE server transaction (§17.2.2): Trying → Proceeding → Completed (Timer J) → Terminated. */
export class NonInviteServerTx extends ServerTxBase {
  /** Guard while waiting for the TU (64*T1), then Timer J. Both on the coarse wheel. */
  private timer: TimerHandle | null;

  constructor(env: TxEnv, key: string, request: SipRequest, src: SipSource, target: SipTarget, reliable: boolean) {
    super(env, key, request, src, target, reliable, 'trying');
    // A TU that never answers must not leak the transaction.
    this.timer = env.timers.setCoarse(64 * env.t.T1, () => {
      this.timer = null;
      this.env.debug({ method: request.method, key }, 'SIP server transaction expired without a final response');
      this.terminate();
    });
  }

  respond(res: SipResponse): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return this.ignored(res);
    const buf = serialize(res);
    if (res.status < 200) {
      this.state = 'proceeding';
      this.last = buf;
      this.send(buf);
      return;
    }
    this.state = 'completed';
    this.last = buf;
    this.timer?.cancel();
    this.timer = null;
    this.send(buf);
    if (this.done) return; // transport error while sending
    if (this.reliable)
      this.terminate(); // Timer J = 0
    else if (this.env.linger) {
      // The layer answers retransmissions from the cached final until Timer J.
      this.done = true;
      this.env.linger(this.key, this, buf);
    } else {
      // Timer J
      this.timer = this.env.timers.setCoarse(64 * this.env.t.T1, () => ((this.timer = null), this.terminate()));
    }
  }

  retransmit(): void {
    // Trying: absorb; Proceeding: last provisional; Completed: last final.
    if (this.last !== null && (this.state === 'proceeding' || this.state === 'completed')) this.send(this.last);
  }

  protected clearTimers(): void {
    this.timer?.cancel();
    this.timer = null;
  }
}

/** INVITE server transaction (§17.2.1 + RFC 6026): Proceeding → Completed/Accepted → Confirmed → Terminated. */
export class InviteServerTx extends ServerTxBase {
  private trying: TimerHandle | null = null;
  private timerG: TimerHandle | null = null;
  private timerH: TimerHandle | null = null;
  private timerIL: TimerHandle | null = null;
  private gInterval: number;
  /** Delay before the automatic 100 Trying (ms). */
  static TRYING_DELAY = 200;
  /** Safety net: an INVITE the TU never answers gets a 500 after this long (ms) instead of leaking. */
  static MAX_PROCEEDING = 600_000;
  private guard: TimerHandle | null = null;

  constructor(env: TxEnv, key: string, request: SipRequest, src: SipSource, target: SipTarget, reliable: boolean) {
    super(env, key, request, src, target, reliable, 'proceeding');
    this.gInterval = env.t.T1;
    // §17.2.1: 100 Trying if the TU does not answer within 200 ms.
    this.trying = env.timers.set(InviteServerTx.TRYING_DELAY, () => {
      this.trying = null;
      if (this.state === 'proceeding' && this.last === null) {
        const buf = serialize(createResponse(this.request, 100));
        this.last = buf;
        this.send(buf);
      }
    });
    this.guard = env.timers.setCoarse(InviteServerTx.MAX_PROCEEDING, () => {
      this.guard = null;
      if (this.state !== 'proceeding') return;
      this.env.debug({ key }, 'SIP INVITE never answered by the TU: 500');
      this.respond(createResponse(this.request, 500, 'Server Internal Error'));
    });
  }

  respond(res: SipResponse): void {
    if (this.state === 'accepted') {
      // RFC 6026 §8.5: 2xx retransmissions from the TU pass through.
      if (res.status >= 200 && res.status < 300) {
        const buf = serialize(res);
        if (this.okBuf !== null) this.okBuf = buf;
        this.send(buf);
      } else this.ignored(res);
      return;
    }
    if (this.state !== 'proceeding') return this.ignored(res);
    this.trying?.cancel();
    this.trying = null;
    if (res.status >= 200) {
      this.guard?.cancel();
      this.guard = null;
    }
    const buf = serialize(res);
    if (res.status < 200) {
      this.last = buf;
      this.send(buf);
      return;
    }
    if (res.status < 300) {
      this.state = 'accepted';
      this.last = null;
      this.send(buf);
      if (this.done) return;
      // Timer L
      this.timerIL = this.env.timers.setCoarse(64 * this.env.t.T1, () => ((this.timerIL = null), this.terminate()));
      // §13.3.1.4: on UDP the 2xx is re-sent (T1 doubling to T2) until its ACK arrives; done here for the TU.
      if (!this.reliable) {
        this.okBuf = buf;
        this.timerG = this.env.timers.set(this.gInterval, () => this.fireOk());
      }
      const c = this.request.core;
      if (c?.callId && c.cseq) this.env.accepted?.(this, dialogAckKey(c.callId, c.cseq.seq, c.from?.tag ?? ''));
      return;
    }
    this.state = 'completed';
    this.last = buf;
    this.send(buf);
    if (this.done) return;
    if (!this.reliable) this.timerG = this.env.timers.set(this.gInterval, () => this.fireG()); // Timer G
    this.timerH = this.env.timers.setCoarse(64 * this.env.t.T1, () => {
      // Timer H: no ACK came.
      this.timerH = null;
      this.env.debug({ key: this.key }, 'SIP INVITE server transaction: no ACK (Timer H)');
      this.terminate();
    });
  }

  private fireG(): void {
    this.timerG = null;
    if (this.state !== 'completed' || this.last === null) return;
    this.send(this.last);
    this.gInterval = Math.min(2 * this.gInterval, this.env.t.T2);
    if (!this.done) this.timerG = this.env.timers.set(this.gInterval, () => this.fireG());
  }

  private okBuf: Buffer | null = null;
  /** Set while in Accepted (see TxEnv.accepted). */
  dialogKey: string | null = null;

  private fireOk(): void {
    this.timerG = null;
    if (this.state !== 'accepted' || this.okBuf === null) return;
    this.send(this.okBuf);
    this.gInterval = Math.min(2 * this.gInterval, this.env.t.T2);
    if (!this.done) this.timerG = this.env.timers.set(this.gInterval, () => this.fireOk());
  }

  /** The ACK for our 2xx arrived (matched by dialog): stop re-sending the 2xx. */
  ackFor2xx(): void {
    this.okBuf = null;
    this.timerG?.cancel();
    this.timerG = null;
  }

  retransmit(): void {
    // Proceeding: last provisional (if any); Completed: last final; Accepted/Confirmed: absorb.
    if (this.last !== null && (this.state === 'proceeding' || this.state === 'completed')) this.send(this.last);
  }

  /** An ACK matched this transaction (non-2xx final). Returns false when it must go to the TU (Accepted). */
  ack(): boolean {
    if (this.state === 'accepted') return false;
    if (this.state !== 'completed') return true; // Confirmed: absorb; Proceeding: stray, absorb
    this.state = 'confirmed';
    this.timerG?.cancel();
    this.timerG = null;
    this.timerH?.cancel();
    this.timerH = null;
    if (this.reliable)
      this.terminate(); // Timer I = 0
    else {
      // Timer I
      this.timerIL = this.env.timers.setCoarse(this.env.t.T4, () => ((this.timerIL = null), this.terminate()));
    }
    return true;
  }

  protected clearTimers(): void {
    this.trying?.cancel();
    this.guard?.cancel();
    this.guard = null;
    this.timerG?.cancel();
    this.timerH?.cancel();
    this.timerIL?.cancel();
    this.trying = this.timerG = this.timerH = this.timerIL = null;
  }
}

export type AnyServerTx = NonInviteServerTx | InviteServerTx;

/** Key matching an ACK for a 2xx to its INVITE (Call-ID, CSeq number, From tag). */
export function dialogAckKey(callId: string, cseq: number, fromTag: string): string {
  return callId + '\u0000' + cseq + '\u0000' + fromTag;
}
