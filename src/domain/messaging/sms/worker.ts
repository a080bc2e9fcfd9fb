/**
 * The outbound SMS worker: claims due rows of tb_sms up to the free window of the bound gateways, submits their
 * parts in order on the first candidate gateway that can take them (failover to the next on no bind or a
 * temporary error), records the message ids, retries temporary failures with exponential back-off and fails
 * permanent ones (refunded by the option). The at-most-once rule is in queue.ts.
 */
import type { Logger } from 'pino';
import type { ConfigStore } from '../../../config/store.js';
import { partMessage, encodeSms } from './encoding.js';
import type { SmsGatewayStore } from './store.js';
import type { SmsRow } from './queue.js';
import { candidatesFor, type SmsService } from './service.js';
import type { SmsTransport, SubmitOutcome } from './transport.js';
import type { SmsGateway } from './gateways.js';
import { isTemporary } from '../smpp/status.js';

export interface WorkerOptions {
  /** this process in tb_sms.owner */
  owner: string;
  leaseMs?: number;
  /** how often due retries and expired leases are looked for */
  pollMs?: number;
}

export class SmsWorker {
  private running = false;
  private again = false;
  private kicked = false;
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private idle: Array<() => void> = [];
  private readonly leaseMs: number;

  constructor(
    private readonly sms: SmsService,
    private readonly gateways: SmsGatewayStore,
    private readonly transport: SmsTransport,
    private readonly config: ConfigStore,
    private readonly log: Logger,
    private readonly o: WorkerOptions,
  ) {
    this.leaseMs = o.leaseMs ?? 120_000;
  }

  async start(): Promise<void> {
    const moved = await this.sms.queue.recover(this.o.owner);
    if (moved) this.log.warn({ rows: moved }, 'SMS rows left in submitting by a stop were settled (at most once)');
    this.transport.sync(await this.gateways.list());
    this.transport.onBound(() => this.kick());
    const poll = this.o.pollMs ?? 250;
    this.timer = setInterval(() => this.kick(), poll);
    this.timer.unref();
    // expired leases of other processes, and gateways another process added or deleted
    let n = 0;
    this.sweepTimer = setInterval(() => {
      if (++n % 3 === 0)
        void this.sms.queue.recover(undefined).catch((e) => this.log.warn({ err: e }, 'SMS lease sweep failed'));
      void this.resync().catch((e) => this.log.warn({ err: e }, 'SMS gateway re-read failed'));
    }, 10_000);
    this.sweepTimer.unref();
  }

  /** Re-reads the gateways (after addsmsgateway / delsmsgateway) and restarts their sessions as needed. */
  async resync(): Promise<void> {
    this.gateways.invalidate();
    this.transport.sync(await this.gateways.list());
    this.kick();
  }

  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      void this.tick().catch((e) => this.log.warn({ err: e }, 'SMS queue tick failed'));
    });
  }

  private async tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (this.stopped) return;
        const gws = await this.gateways.list();
        // every dispatch holds at most one window slot at a time (or waits for one): claim what the bound windows
        // can take, and no more, so a claimed row is written soon after its claim
        let free = 0;
        for (const g of gws) if (g.bindMode !== 'receiver' && this.isBound(g.name)) free += g.window;
        const n = Math.min(500, free - this.active);
        if (n <= 0) return;
        const rows = await this.sms.queue.claim(n, this.o.owner, this.leaseMs);
        for (const r of rows) {
          this.active++;
          void this.dispatch(r, gws)
            .catch((e) => this.log.error({ err: e, sms: r.id }, 'SMS dispatch failed'))
            .finally(() => {
              this.active--;
              if (this.active === 0) this.idle.splice(0).forEach((f) => f());
              this.kick();
            });
        }
        if (rows.length === n) this.again = true;
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private isBound(name: string): boolean {
    return this.transport.status(name)?.state === 'bound';
  }

  private backoff(attempts: number): number {
    const base = this.config.options.smsretrydelay;
    const d = Math.min(600_000, base * 2 ** Math.min(attempts, 16));
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }

  private async temporary(row: SmsRow, settled: number, gateway: string, why: string): Promise<void> {
    const o = this.config.options;
    if (row.attempts + 1 >= o.smsmaxattempts) {
      await this.sms.fail(row, `gave up after ${row.attempts + 1} attempts: ${why}`);
      return;
    }
    await this.sms.queue.retry(row.id, {
      nextTryAt: Date.now() + this.backoff(row.attempts),
      error: why,
      gateway,
      count: true,
      settled,
    });
  }

  private async dispatch(row: SmsRow, gws: readonly SmsGateway[]): Promise<void> {
    const t = this.transport;
    const enc = encodeSms(row.text, row.encoding);
    const candidates = candidatesFor(gws, row.destination, row.sender);
    const tried = new Set<string>();
    const reasons: string[] = [];
    // the first bound candidate (its window may be full: the submit waits for a slot there)
    const bound = (g: SmsGateway) => !tried.has(g.name) && t.status(g.name)?.state === 'bound';
    let gw = candidates.find(bound);
    if (!gw) {
      const why = candidates.length
        ? 'no SMS gateway bound: ' + candidates.map((g) => `${g.name}: ${t.status(g.name)?.error || 'down'}`).join('; ')
        : `no enabled SMS gateway serves ${row.destination} for sender "${row.sender}"`;
      await this.temporary(row, row.acked, '', why);
      return;
    }
    for (let k = row.acked; k < enc.parts.length;) {
      const { sm, esm } = partMessage(enc.parts[k]!, row.ref, enc.parts.length, k);
      const part = {
        source: row.sender || gw.defaultSender,
        destination: row.destination,
        dataCoding: enc.dataCoding,
        esmClass: esm,
        shortMessage: sm,
      };
      const lease = Date.now() + this.leaseMs;
      const out: SubmitOutcome = await t.submit(gw.name, part, () => this.sms.queue.markSent(row.id, k, lease));
      const last = k === enc.parts.length - 1;
      if (out.kind === 'ok' || out.kind === 'unconfirmed') {
        const state = out.kind === 'ok' ? 'submitted' : 'unconfirmed';
        const messageId = out.kind === 'ok' ? out.messageId : '';
        await this.sms.queue.settlePart(row.id, { part: k, gateway: gw.name, messageId, state }, last);
        if (last) await this.sms.statusChanged(row.id);
        if (out.kind === 'unconfirmed')
          this.log.warn({ sms: row.id, part: k + 1, why: out.text }, 'SMS part unconfirmed: not sent again');
        k++;
        continue;
      }
      if (out.kind === 'error' && !isTemporary(out.status)) {
        await this.sms.fail(row, `${gw.name} refused part ${k + 1}: ${out.text}`);
        return;
      }
      // not taken (no bind, or a temporary error): the next candidate, else back-off
      reasons.push(`${gw.name}: ${out.text}`);
      tried.add(gw.name);
      const next = candidates.find(bound);
      if (!next) {
        await this.temporary(row, k, gw.name, reasons.join('; '));
        return;
      }
      gw = next;
    }
  }

  /** Stops claiming; waits (bounded) for the dispatches in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.active > 0)
      await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise((r) => setTimeout(r, 3000))]);
  }
}
