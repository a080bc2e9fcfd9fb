/**
 * One SMPP 3.4 client session (ESME) to an SMSC, over the `smpp` package's codec: connect (TCP or TLS), bind
 * (transmitter, receiver or transceiver), enquire_link keepalive, rebind with exponential back-off after a drop or a
 * refused bind, a window of outstanding submit_sm, a throughput limit (token bucket), and deliver_sm answered after
 * the handler has taken it (a handler failure answers ESME_RSYSERR so the SMSC delivers it again; a refusal for
 * good, InboundRefused, its own status).
 */
import smpp from 'smpp';
import type { Session, Pdu } from 'smpp';
import type { BindMode } from '../sms/gateways.js';
import type { GatewayLinkState, GatewayStatus, InboundSms, OutPart, SubmitOutcome } from '../sms/transport.js';
import { InboundRefused } from '../sms/transport.js';
import { statusName } from './status.js';
import { readConcat } from '../sms/encoding.js';

export interface SessionConfig {
  name: string;
  host: string;
  port: number;
  tls: boolean;
  systemId: string;
  password: string;
  systemType: string;
  bindMode: BindMode;
  window: number;
  /** submit_sm per second (0: no limit) */
  throughput: number;
  enquireLinkMs: number;
  /** first and largest pause before a reconnect */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** how long a written submit_sm waits for its response before it counts as unconfirmed */
  responseTimeoutMs: number;
}

interface Pending {
  resolve: (o: SubmitOutcome) => void;
  timer?: NodeJS.Timeout;
}

export interface SessionEvents {
  inbound(m: InboundSms): Promise<void>;
  bound(name: string): void;
  log(level: 'info' | 'warn', obj: Record<string, unknown>, msg: string): void;
}

export class SmppSession {
  private session: Session | undefined;
  private linkState: GatewayLinkState = 'connecting';
  private error = '';
  private pending = new Map<number, Pending>();
  private waiters: Array<() => void> = [];
  private peak = 0;
  private binds = 0;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private tokens: number;
  private tokensAt = Date.now();
  private stopped = false;
  /** keys of the slots held between the window check and the write (negative, never a sequence number) */
  private holds = 0;

  constructor(
    readonly cfg: SessionConfig,
    private readonly events: SessionEvents,
  ) {
    this.tokens = this.burst();
  }

  /** Settings that need a new session when they change. */
  static key(c: SessionConfig): string {
    const { name, host, port, tls, systemId, password, systemType, bindMode, window, throughput } = c;
    return JSON.stringify([name, host, port, tls, systemId, password, systemType, bindMode, window, throughput]);
  }

  start(): void {
    this.connect();
  }

  status(): GatewayStatus {
    return {
      state: this.linkState,
      error: this.error,
      outstanding: this.pending.size,
      peakOutstanding: this.peak,
      binds: this.binds,
    };
  }

  private burst(): number {
    return this.cfg.throughput > 0 ? Math.max(1, Math.ceil(this.cfg.throughput / 20)) : Number.POSITIVE_INFINITY;
  }

  private refill(): void {
    if (this.cfg.throughput <= 0) return;
    const now = Date.now();
    this.tokens = Math.min(this.burst(), this.tokens + ((now - this.tokensAt) * this.cfg.throughput) / 1000);
    this.tokensAt = now;
  }

  /** Submits this session can take at once now. */
  capacity(): number {
    if (this.linkState !== 'bound' || this.cfg.bindMode === 'receiver') return 0;
    this.refill();
    return Math.max(0, Math.min(this.cfg.window - this.pending.size - this.waiters.length, Math.floor(this.tokens)));
  }

  private connect(): void {
    if (this.stopped) return;
    this.linkState = 'connecting';
    const c = this.cfg;
    const s = smpp.connect({ host: c.host, port: c.port, tls: c.tls, rejectUnauthorized: false });
    this.session = s;
    let bound = false;
    s.on(c.tls ? 'secureConnect' : 'connect', () => {
      const bind = `bind_${c.bindMode}`;
      s[bind]({ system_id: c.systemId, password: c.password, system_type: c.systemType }, (pdu: Pdu) => {
        if (pdu.command_status === 0) {
          bound = true;
          this.linkState = 'bound';
          this.error = '';
          this.failures = 0;
          this.binds++;
          this.keepalive = setInterval(() => this.enquire(s), c.enquireLinkMs);
          this.keepalive.unref();
          this.events.log('info', { gateway: c.name }, 'SMPP bound');
          this.events.bound(c.name);
        } else {
          this.linkState = 'refused';
          this.error = `bind refused by the SMSC: ${statusName(pdu.command_status)}`;
          this.events.log('warn', { gateway: c.name, status: pdu.command_status }, 'SMPP bind refused');
          s.destroy();
        }
      });
    });
    s.on('deliver_sm', (pdu: Pdu) => this.deliver(s, pdu));
    s.on('enquire_link', (pdu: Pdu) => s.send(pdu.response()));
    s.on('unbind', (pdu: Pdu) => {
      s.send(pdu.response());
      s.close();
    });
    s.on('error', (e: Error) => {
      if (!this.error || this.linkState !== 'refused') this.error = `connection error: ${e.message}`;
    });
    s.on('close', () => {
      if (this.session !== s) return;
      this.session = undefined;
      if (this.keepalive) clearInterval(this.keepalive);
      this.keepalive = undefined;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ kind: 'unconfirmed', text: 'the SMSC connection closed before the submit_sm_resp' });
      }
      this.pending.clear();
      this.wakeAll();
      if (this.stopped) {
        this.linkState = 'stopped';
        return;
      }
      if (this.linkState !== 'refused') {
        this.linkState = 'down';
        if (bound) this.error = 'the SMSC closed the connection';
        else if (!this.error) this.error = 'the SMSC closed the connection before the bind';
      }
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const c = this.cfg;
    const base = Math.min(c.backoffMaxMs, c.backoffMinMs * 2 ** Math.min(this.failures, 20));
    this.failures++;
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private enquire(s: Session): void {
    const timer = setTimeout(() => s.destroy(), this.cfg.responseTimeoutMs);
    timer.unref();
    if (!s.enquire_link({}, () => clearTimeout(timer))) clearTimeout(timer);
  }

  private deliver(s: Session, pdu: Pdu): void {
    const sm = pdu.short_message as { message?: unknown; udh?: Buffer[] } | undefined;
    // the package hands the UDH's information elements; readConcat takes the UDH with its length octet
    const ies = Buffer.concat(sm?.udh ?? []);
    const concat = ies.length ? readConcat(Buffer.concat([Buffer.from([ies.length]), ies])) : undefined;
    const payload = pdu.message_payload as { message?: unknown } | undefined;
    const text = String(sm?.message ?? payload?.message ?? '');
    const m: InboundSms = {
      gateway: this.cfg.name,
      esmClass: Number(pdu.esm_class ?? 0),
      source: String(pdu.source_addr ?? ''),
      destination: String(pdu.destination_addr ?? ''),
      text,
      receiptedId: pdu.receipted_message_id ? String(pdu.receipted_message_id) : undefined,
      messageState: pdu.message_state === undefined ? undefined : Number(pdu.message_state),
      concat,
    };
    this.events.inbound(m).then(
      () => s.send(pdu.response()),
      (e: unknown) => s.send(pdu.response({ command_status: e instanceof InboundRefused ? e.status : 0x08 })),
    );
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }

  /**
   * Waits until a window slot and a throughput token are free and holds the slot (under a negative key, in the
   * same synchronous step as the check); undefined when the bind is gone.
   */
  private async slot(): Promise<number | undefined> {
    for (;;) {
      if (this.linkState !== 'bound') return undefined;
      this.refill();
      if (this.pending.size < this.cfg.window && this.tokens >= 1) {
        if (this.cfg.throughput > 0) this.tokens -= 1;
        const key = -++this.holds;
        this.pending.set(key, { resolve: () => undefined });
        return key;
      }
      if (this.pending.size < this.cfg.window) {
        const wait = Math.ceil(((1 - this.tokens) * 1000) / this.cfg.throughput);
        await new Promise((r) => setTimeout(r, Math.max(1, wait)));
      } else await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async submit(part: OutPart, beforeWrite: () => Promise<void>): Promise<SubmitOutcome> {
    if (this.cfg.bindMode === 'receiver')
      return { kind: 'unavailable', text: `gateway ${this.cfg.name} is bound as a receiver only` };
    const hold = await this.slot();
    if (hold === undefined) return { kind: 'unavailable', text: this.notBound() };
    const s = this.session;
    // the slot is held from here: the at-most-once mark, then the write under the PDU's sequence number
    try {
      if (s) await beforeWrite();
    } catch (e) {
      this.pending.delete(hold);
      this.wakeOne();
      throw e;
    }
    if (!s || this.session !== s || this.linkState !== 'bound') {
      this.pending.delete(hold);
      this.wakeOne();
      return { kind: 'unavailable', text: this.notBound() };
    }
    return new Promise<SubmitOutcome>((resolve) => {
      const pdu = new smpp.PDU('submit_sm', {
        source_addr: part.source,
        source_addr_ton: /^\+?\d+$/.test(part.source) ? 1 : 5,
        source_addr_npi: /^\+?\d+$/.test(part.source) ? 1 : 0,
        destination_addr: part.destination,
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        esm_class: part.esmClass,
        data_coding: part.dataCoding,
        registered_delivery: 1,
        short_message: part.shortMessage,
      });
      const done = (o: SubmitOutcome) => {
        const p = this.pending.get(pdu.sequence_number);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(pdu.sequence_number);
        this.wakeOne();
        resolve(o);
      };
      this.pending.delete(hold);
      const written = s.send(pdu, (resp: Pdu) => {
        if (resp.command_status === 0) done({ kind: 'ok', messageId: String(resp.message_id ?? '') });
        else done({ kind: 'error', status: resp.command_status, text: statusName(resp.command_status) });
      });
      if (!written) {
        this.wakeOne();
        resolve({ kind: 'unavailable', text: this.notBound() });
        return;
      }
      const timer = setTimeout(
        () => done({ kind: 'unconfirmed', text: 'no submit_sm_resp within the response timeout' }),
        this.cfg.responseTimeoutMs,
      );
      this.pending.set(pdu.sequence_number, { resolve, timer });
      if (this.pending.size > this.peak) this.peak = this.pending.size;
    });
  }

  private notBound(): string {
    return `gateway ${this.cfg.name} is not bound (${this.error || this.linkState})`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const s = this.session;
    if (!s) {
      this.linkState = 'stopped';
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => s.destroy(), 1000);
      s.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (this.linkState === 'bound' && s.unbind({}, () => s.close())) return;
      s.destroy();
    });
    this.linkState = 'stopped';
  }
}
