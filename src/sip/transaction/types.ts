// Public transaction interfaces (RFC 3261 §17) and the environment a transaction runs in.
import type { EventEmitter } from 'node:events';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { SipSource, SipTarget } from '../transport/types.js';
import type { TimerService } from './timers.js';

export interface ServerTransaction {
  readonly request: SipRequest;
  readonly src: SipSource;
  /** Sends a response (1xx..6xx) through the transaction; ignored (debug log) once the transaction is done. */
  respond(res: SipResponse): void;
  /** 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated' */
  readonly state: string;
  /** For a CANCEL: the INVITE server transaction it matches (RFC 3261 §9.2), if still pending. */
  readonly cancels?: ServerTransaction;
  /** True once a CANCEL matched this (INVITE) transaction. */
  readonly cancelled?: boolean;
}

/** Events: 'provisional'(res), 'final'(res), 'timeout', 'transport-error'(err). */
export interface ClientTransaction extends EventEmitter {
  /** INVITE only: sends CANCEL (after the first provisional response, RFC 3261 §9.1). */
  cancel?(): void;
}

export interface TimerValues {
  T1: number;
  T2: number;
  T4: number;
}

/** Everything a transaction needs from the outside (fakeable in unit tests). */
export interface TxEnv {
  timers: TimerService;
  t: TimerValues;
  /** Sends bytes; onError is called (maybe asynchronously) when the transport fails. */
  send(buf: Buffer, target: SipTarget, onError: (err: Error) => void): void;
  /** Called once when a transaction reaches Terminated (remove it from the tables). */
  terminated(key: string, tx: object, server: boolean): void;
  debug(o: object, m: string): void;
  /**
   * Optional: takes over a non-INVITE server transaction that reached Completed on an unreliable
   * transport. The layer keeps only the final response (to answer retransmissions) until Timer J,
   * so the transaction (and the parsed request) can be garbage-collected at once.
   */
  linger?(key: string, tx: object, finalResponse: Buffer): void;
  /** Optional: an INVITE server transaction entered Accepted (2xx sent); ACKs for it are matched by `dialogKey`. */
  accepted?(tx: object, dialogKey: string): void;
}
