/**
 * What the SMS service needs of a transport to SMSCs (implemented over SMPP by ../smpp/pool.ts): sessions per
 * gateway, a submit with its outcome, and the inbound deliver_sm (receipts, mobile-originated messages).
 */
import type { SmsGateway } from './gateways.js';

export interface OutPart {
  source: string;
  destination: string;
  dataCoding: number;
  esmClass: number;
  shortMessage: Buffer;
}

/**
 * The outcome of one submit_sm: `ok` with the SMSC's message id; `error` with the command_status (nothing was
 * taken); `unavailable` (not written: no bind, or the bind was lost before the write); `unconfirmed` (written,
 * but no answer came: the SMSC may have taken it, so it is never sent again).
 */
export type SubmitOutcome =
  | { kind: 'ok'; messageId: string }
  | { kind: 'error'; status: number; text: string }
  | { kind: 'unavailable'; text: string }
  | { kind: 'unconfirmed'; text: string };

export interface InboundSms {
  gateway: string;
  esmClass: number;
  source: string;
  destination: string;
  /** decoded text of the short_message (or message_payload) */
  text: string;
  receiptedId?: string;
  messageState?: number;
  /** the concatenation header of one part of a long message */
  concat?: { ref: number; total: number; seq: number };
}

/**
 * A deliver_sm the switch refuses for good (an incoming SMS its receiver cannot pay, smsmonocredit=reject): the
 * transport answers it with `status` instead of ESME_RSYSERR (which asks the SMSC to deliver it again).
 */
export class InboundRefused extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** ESME_RX_P_APPN: a permanent error of the receiving ESME's application (SMPP 3.4, 5.1.3). */
export const ESME_RX_P_APPN = 0x65;

export type GatewayLinkState = 'connecting' | 'bound' | 'down' | 'refused' | 'stopped';

export interface GatewayStatus {
  state: GatewayLinkState;
  /** why it is not bound ('' when bound) */
  error: string;
  outstanding: number;
  /** most submit_sm outstanding at once since the start */
  peakOutstanding: number;
  binds: number;
}

export interface SmsTransport {
  /** Starts, restarts (changed settings) or stops the sessions so that they match the enabled gateways. */
  sync(gateways: readonly SmsGateway[]): void;
  status(gateway: string): GatewayStatus | undefined;
  /** Submits that the gateway can take now (window and throughput), 0 when not bound. */
  capacity(gateway: string): number;
  /**
   * Submits one part: waits for a window slot and a throughput token while bound, then runs `beforeWrite` (the
   * durable at-most-once mark) and writes the submit_sm.
   */
  submit(gateway: string, part: OutPart, beforeWrite?: () => Promise<void>): Promise<SubmitOutcome>;
  /**
   * Called for every deliver_sm, answered with deliver_sm_resp once the handler is done: ESME_ROK when it
   * resolves, the status of an InboundRefused it throws, else ESME_RSYSERR (the SMSC delivers it again).
   */
  onInbound(handler: (m: InboundSms) => Promise<void>): void;
  /** Called when a session binds (the queue can move again). */
  onBound(handler: (gateway: string) => void): void;
  stop(): Promise<void>;
}
