/**
 * Prometheus metrics of this process (prom-client). Counters on the hot path are plain increments (an API request,
 * a call's end); everything else is read when scraped: registrations and live calls from memory, queue depths from
 * the database (one indexed count per queue), pool use from the PostgreSQL pool.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Services } from '../../services.js';
import type { ApiResult } from '../types.js';
import { QUEUES, queueDepth } from '../../domain/jobs/overview.js';

export interface MetricsSources {
  services: Services;
  /** Known command names (anything else is counted as "unknown", so a scanner cannot grow the label set). */
  isCommand: (name: string) => boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly apiRequests: Counter<'command' | 'status'>;
  private readonly apiSeconds: Histogram<'command'>;
  private readonly callsEnded: Counter<'outcome' | 'cause'>;
  private readonly cdrs: Counter;
  private readonly billedSeconds: Counter;

  constructor(private readonly src: MetricsSources) {
    const r = this.registry;
    const s = src.services;
    collectDefaultMetrics({ register: r, prefix: 'voxswitch_process_' });
    this.apiRequests = new Counter({
      name: 'voxswitch_api_requests_total',
      help: 'API requests answered, by command and outcome (ok, error)',
      labelNames: ['command', 'status'],
      registers: [r],
    });
    this.apiSeconds = new Histogram({
      name: 'voxswitch_api_request_seconds',
      help: 'time from the decoded request to its answer, by command',
      labelNames: ['command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.callsEnded = new Counter({
      name: 'voxswitch_calls_ended_total',
      help: 'calls ended on this process, by outcome (answered, failed) and cause',
      labelNames: ['outcome', 'cause'],
      registers: [r],
    });
    this.cdrs = new Counter({ name: 'voxswitch_cdrs_total', help: 'CDRs written by this process', registers: [r] });
    this.billedSeconds = new Counter({
      name: 'voxswitch_call_seconds_total',
      help: 'billed seconds of the answered calls ended on this process (ACD = this / answered calls)',
      registers: [r],
    });
    const calls = () => s.liveCalls.stats();
    const gauge = (name: string, help: string, read: () => number | Promise<number>) =>
      new Gauge({
        name,
        help,
        registers: [r],
        async collect() {
          this.set(await read());
        },
      });
    gauge(
      'voxswitch_registrations',
      'SIP bindings held by this process',
      () => s.nodeStats?.sample().registrations ?? 0,
    );
    gauge('voxswitch_live_calls', 'calls in progress on this process', () => calls().live);
    gauge('voxswitch_connected_calls', 'answered calls in progress on this process', () => calls().connected);
    gauge('voxswitch_call_attempts', 'call attempts since this process started', () => calls().attempted);
    gauge('voxswitch_call_answers', 'answered calls since this process started', () => calls().answered);
    gauge('voxswitch_asr_percent', 'answer-seizure ratio since start (answered / attempted, %)', () => calls().asr);
    gauge('voxswitch_acd_seconds', 'average duration of the answered calls ended since start', () => calls().acd);
    gauge('voxswitch_bans', 'addresses banned now', () => s.bans.list().length);
    gauge('voxswitch_overload_refused', 'requests refused by overload control since start', () => {
      const o = s.overload?.stats();
      return o ? o.refused_sip + o.refused_api : 0;
    });
    new Gauge({
      name: 'voxswitch_queue_depth',
      help: 'jobs waiting in a durable queue (sms, mail, fax, webhook)',
      labelNames: ['queue'],
      registers: [r],
      async collect() {
        for (const q of QUEUES) {
          const n = await queueDepth(s.storage.db, q).catch(() => undefined);
          if (n !== undefined) this.set({ queue: q.queue }, n);
        }
      },
    });
    new Gauge({
      name: 'voxswitch_db_pool_connections',
      help: 'PostgreSQL pool connections by state (total, idle, waiting requests); absent on SQLite',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const p = s.storage.pool;
        if (!p) return;
        this.set({ state: 'total' }, p.totalCount);
        this.set({ state: 'idle' }, p.idleCount);
        this.set({ state: 'waiting' }, p.waitingCount);
      },
    });
  }

  /** Counts one API answer. */
  observeApi(entry: string, result: ApiResult, seconds: number): void {
    const command = this.src.isCommand(entry) ? entry : 'unknown';
    this.apiRequests.inc({ command, status: result.ok ? 'ok' : 'error' });
    this.apiSeconds.observe({ command }, seconds);
  }

  /** Counts one ended call (answered when it had a connect time) and its CDR. */
  observeCall(answered: boolean, cause: string | undefined, cdrWritten: boolean, seconds: number): void {
    this.callsEnded.inc({ outcome: answered ? 'answered' : 'failed', cause: causeLabel(cause) });
    if (cdrWritten) this.cdrs.inc();
    if (answered) this.billedSeconds.inc(seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A bounded label: the SIP status class or a short word of the reason, never free text. */
export function causeLabel(reason: string | undefined): string {
  if (!reason) return 'normal';
  const code = /\b([1-6]\d\d)\b/.exec(reason);
  if (code) return code[1]!;
  const word = /^[a-z][a-z -]{0,30}/i.exec(reason.trim());
  return word ? word[0].trim().toLowerCase().replace(/\s+/g, '_') : 'other';
}
