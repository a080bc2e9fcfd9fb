// Transaction layer: matching (RFC 3261 §17.1.3, §17.2.3), creation, and dispatch to the TU.
import { createResponse, formatVia, generateBranch, nameIs, ownString, serialize } from '../message/index.js';
import type { SipHeader, SipRequest, SipResponse } from '../message/index.js';
import { bracket, defaultPort, isReliable, viaTransport } from '../transport/types.js';
import type { SipSource, SipTarget } from '../transport/types.js';
import { InviteClientTx, NonInviteClientTx } from './client.js';
import type { AnyClientTx } from './client.js';
import { InviteServerTx, NonInviteServerTx, dialogAckKey } from './server.js';
import { LingeringFinals } from './finals.js';
import type { AnyServerTx } from './server.js';
import type { ClientTransaction, ServerTransaction, TxEnv } from './types.js';
import type { TimerHandle } from './timers.js';
import { EventEmitter } from 'node:events';

const SEP = '\u0000';
const COOKIE = 'z9hG4bK';
const NOOP = (): void => undefined;

export interface TuHandlers {
  onRequest(req: SipRequest, tx: ServerTransaction, src: SipSource): void;
  onAck(req: SipRequest, src: SipSource): void;
  warn(o: object, m: string): void;
}

/**
 * Server transaction key (§17.2.3): branch + sent-by + method (ACK matches the INVITE), or the
 * RFC 2543 fallback (Request-URI, From tag, Call-ID, CSeq number, top Via) when the branch lacks
 * the magic cookie. Requires core (parsed request with Via/CSeq/Call-ID).
 */
export function serverKey(req: SipRequest, method = req.method === 'ACK' ? 'INVITE' : req.method): string {
  const core = req.core!;
  const v = core.via[0]!;
  const b = v.branch;
  if (b !== null && b.length > COOKIE.length && b.startsWith(COOKIE)) {
    return b + SEP + v.host.toLowerCase() + ':' + (v.port ?? '') + SEP + method;
  }
  return (
    '2543' +
    SEP +
    req.uri +
    SEP +
    (core.from?.tag ?? '') +
    SEP +
    core.callId +
    SEP +
    (core.cseq?.seq ?? '') +
    SEP +
    formatVia(v) +
    SEP +
    method
  );
}

/** Client transaction key (§17.1.3): top Via branch + CSeq method. */
export function clientKey(branch: string, method: string): string {
  return branch + SEP + method;
}

/** Where responses to a request go (RFC 3261 §18.2.2, RFC 3581). */
export function replyTarget(req: SipRequest, src: SipSource): SipTarget {
  const v = req.core!.via[0]!;
  if (src.transport === 'udp')
    return { transport: 'udp', host: src.ip, port: v.rport !== undefined ? src.port : (v.port ?? 5060) };
  return { transport: src.transport, host: src.ip, port: v.port ?? defaultPort(src.transport), connId: src.connId };
}

export class TransactionLayer {
  readonly server = new Map<string, AnyServerTx>();
  readonly client = new Map<string, AnyClientTx>();
  private readonly env: TxEnv;

  /** Completed non-INVITE server transactions on UDP: key → final response, until Timer J (finals.ts). */
  readonly lingering = new LingeringFinals();
  /** INVITE server transactions in Accepted, by Call-ID/CSeq/From-tag (to see the ACK of their 2xx). */
  readonly acceptedByDialog = new Map<string, InviteServerTx>();
  /** One timer drives Timer J for every lingering final. */
  private jTimer: TimerHandle | null = null;

  constructor(
    env: Omit<TxEnv, 'terminated' | 'linger'>,
    private readonly tu: TuHandlers,
  ) {
    this.env = {
      ...env,
      terminated: (key, tx, server) => {
        const map: Map<string, object> = server ? this.server : this.client;
        if (map.get(key) === tx) map.delete(key);
        if (tx instanceof InviteServerTx && tx.dialogKey !== null && this.acceptedByDialog.get(tx.dialogKey) === tx) {
          this.acceptedByDialog.delete(tx.dialogKey);
        }
      },
      accepted: (tx, dialogKey) => {
        if (!(tx instanceof InviteServerTx)) return;
        tx.dialogKey = dialogKey;
        this.acceptedByDialog.set(dialogKey, tx);
      },
      linger: (longKey, tx, buf) => {
        if (this.server.get(longKey) === tx) this.server.delete(longKey);
        // kept for Timer J (32 s): a key of its own, not a concatenation holding on to the request's text
        this.lingering.add(ownString(longKey), buf, this.env.timers.now() + 64 * this.env.t.T1);
        if (this.jTimer === null) this.armJ();
      },
    };
  }

  private armJ(): void {
    const due = this.lingering.nextDue();
    if (due === undefined) return;
    const delay = Math.max(0, due - this.env.timers.now());
    this.jTimer = this.env.timers.setCoarse(delay, () => this.drainJ());
  }

  /** Timer J for the lingering entries that are due. */
  private drainJ(): void {
    this.jTimer = null;
    this.lingering.drain(this.env.timers.now());
    this.armJ();
  }

  /** A parsed request that passed the stack's checks (core with Via, CSeq, Call-ID, From, To). */
  receiveRequest(req: SipRequest, src: SipSource): void {
    const method = req.method;
    const key = serverKey(req);
    if (method === 'ACK') {
      const tx = this.server.get(key);
      if (tx instanceof InviteServerTx && tx.ack()) return; // ACK to a non-2xx: absorbed by the transaction
      const core = req.core!;
      if (this.acceptedByDialog.size > 0) {
        const acc = this.acceptedByDialog.get(dialogAckKey(core.callId!, core.cseq!.seq, core.from?.tag ?? ''));
        acc?.ackFor2xx();
      }
      this.safe(() => this.tu.onAck(req, src), req);
      return;
    }
    const done = this.lingering.get(key);
    if (done !== undefined) {
      // Retransmission of a completed non-INVITE request (UDP): the final again, to where it came from.
      this.env.send(done, replyTarget(req, src), NOOP);
      return;
    }
    const existing = this.server.get(key);
    if (existing !== undefined) {
      existing.retransmit();
      return;
    }
    const target = replyTarget(req, src);
    const reliable = isReliable(src.transport);
    const tx: AnyServerTx =
      method === 'INVITE'
        ? new InviteServerTx(this.env, key, req, src, target, reliable)
        : new NonInviteServerTx(this.env, key, req, src, target, reliable);
    this.server.set(key, tx);
    if (method === 'CANCEL') {
      const inv = this.server.get(serverKey(req, 'INVITE'));
      if (inv instanceof InviteServerTx && inv.state === 'proceeding') {
        tx.cancels = inv;
        inv.cancelled = true;
      }
    }
    this.safe(() => this.tu.onRequest(req, tx, src), req, tx);
  }

  private safe(fn: () => void, req: SipRequest, tx?: AnyServerTx): void {
    try {
      fn();
    } catch (err) {
      this.tu.warn(
        { err: err instanceof Error ? err.message : String(err), method: req.method },
        'SIP request handler threw',
      );
      if (tx && (tx.state === 'trying' || tx.state === 'proceeding')) {
        try {
          tx.respond(createResponse(req, 500, 'Server Internal Error'));
        } catch {
          /* unanswerable */
        }
      }
    }
  }

  /** A parsed response: matched to a client transaction or dropped. Returns false when unmatched. */
  receiveResponse(res: SipResponse): boolean {
    const core = res.core;
    const v = core?.via[0];
    if (!v || v.branch === null || !core!.cseq) return false;
    const tx = this.client.get(clientKey(v.branch, core!.cseq.method));
    if (tx === undefined) return false;
    tx.receive(res);
    return true;
  }

  /**
   * Starts a client transaction: copies the request with our Via on top (new branch, rport) and
   * Max-Forwards when missing. ACK is sent once without a transaction (the returned emitter stays silent).
   */
  request(req: SipRequest, target: SipTarget, local: { host: string; port: number }): ClientTransaction {
    const branch = generateBranch();
    const via: SipHeader = {
      name: 'Via',
      value:
        'SIP/2.0/' +
        viaTransport(target.transport) +
        ' ' +
        bracket(local.host) +
        ':' +
        local.port +
        ';branch=' +
        branch +
        ';rport',
    };
    const headers: SipHeader[] = [via];
    let mf = false;
    for (const h of req.headers) {
      if (!mf && nameIs(h.name, 'max-forwards')) mf = true;
      headers.push(h);
    }
    if (!mf) headers.splice(1, 0, { name: 'Max-Forwards', value: '70' });
    const out: SipRequest = {
      type: 'request',
      method: req.method,
      uri: req.uri,
      version: req.version || 'SIP/2.0',
      headers,
      body: req.body ?? Buffer.alloc(0),
    };
    if (req.ruri) out.ruri = req.ruri;
    const buf = serialize(out); // throws SipSerializeError on a malformed request (caller bug)
    if (req.method === 'ACK') {
      const silent = new EventEmitter() as ClientTransaction;
      this.env.send(buf, target, (err) => this.env.debug({ err: err.message }, 'SIP ACK not sent'));
      return silent;
    }
    return this.startClient(out, buf, target, branch);
  }

  private startClient(req: SipRequest, buf: Buffer, target: SipTarget, branch: string): AnyClientTx {
    const key = clientKey(branch, req.method);
    const reliable = isReliable(target.transport);
    const tx: AnyClientTx =
      req.method === 'INVITE'
        ? new InviteClientTx(this.env, key, req, buf, target, reliable, (cancel, t) =>
            this.spawnCancel(cancel, t, branch),
          )
        : new NonInviteClientTx(this.env, key, req, buf, target, reliable);
    this.client.set(key, tx);
    // Start on the next tick so the caller can attach listeners before anything (even a sync error) is emitted.
    process.nextTick(() => tx.start());
    return tx;
  }

  private spawnCancel(cancel: SipRequest, target: SipTarget, branch: string): void {
    const key = clientKey(branch, 'CANCEL');
    const tx = new NonInviteClientTx(this.env, key, cancel, serialize(cancel), target, isReliable(target.transport));
    tx.on('timeout', () => this.env.debug({ branch }, 'SIP CANCEL timed out'));
    this.client.set(key, tx);
    tx.start();
  }

  /** Terminates everything (stack shutdown). */
  clear(): void {
    this.jTimer?.cancel();
    this.jTimer = null;
    this.lingering.clear();
    this.acceptedByDialog.clear();
    for (const tx of [...this.server.values()]) tx.terminate();
    for (const tx of [...this.client.values()]) tx.terminate();
    this.server.clear();
    this.client.clear();
  }
}
