/**
 * Events out: `emit(kind, data)` stores one delivery per matching enabled hook (tb_webhook_deliveries, with the
 * exact JSON body and an event id that every retry keeps), and the delivery job POSTs them, signed, retrying
 * with exponential back-off. Each attempt is its own row (status, latency, error), so an admin can list them.
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { sql } from 'kysely';
import type { DomainServices } from '../deps.js';
import type { SecretBox } from '../accounts/secrets.js';
import { DomainError } from '../errors.js';
import { JobLoop, backoffMs } from '../jobs/loop.js';
import { checkWebhookUrl, forbiddenAddress, matches, parseEventList, sign, type EventKind } from './signature.js';

/** What other parts of the switch use to announce something (SMS status, incoming SMS, e-mail failed, fax). */
export interface Events {
  /** Queues the event for every hook subscribed to its kind; answers the event id. */
  emit(kind: EventKind, data: Record<string, unknown>): Promise<string>;
}

export interface Webhook {
  id: number;
  url: string;
  events: string[];
  enabled: boolean;
  createdAt: number;
}

export interface DeliveryRow {
  id: number;
  eventId: string;
  hookId: number;
  kind: string;
  attempt: number;
  state: string;
  statusCode: number;
  latencyMs: number;
  error: string;
  nextTryAt: number;
  createdAt: number;
}

export interface DeliveryReport {
  delivered: number;
  retry: number;
  failed: number;
}

const BATCH = 20;

export class WebhookService implements Events {
  readonly loop: JobLoop<DeliveryReport>;

  constructor(
    private readonly s: DomainServices,
    private readonly box: SecretBox,
  ) {
    this.loop = new JobLoop(
      'webhooks',
      () => this.deliverDue(),
      s.log,
      () => s.config.options.mailqueueinterval,
    );
  }

  private get db() {
    return this.s.storage.db;
  }

  async add(url: string, events: string, secret: string): Promise<Webhook> {
    const u = checkWebhookUrl(url, this.s.config.options.webhookallowprivate);
    const list = parseEventList(events);
    if (secret.length < 16 || secret.length > 256 || /[\x00-\x1f]/.test(secret))
      throw new DomainError('secret: 16-256 printable characters (the receiver verifies signatures with it)');
    const createdAt = Date.now();
    const row = await this.db
      .insertInto('tb_webhooks')
      .values({
        url: u.href,
        events: list.join(','),
        secret_enc: this.box.encrypt(secret),
        enabled: 1,
        created_at: createdAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: Number(row.id), url: u.href, events: list, enabled: true, createdAt };
  }

  /** Deletes a hook; its pending deliveries fail on their next attempt. False when there is none. */
  async remove(id: number): Promise<boolean> {
    const r = await this.db.deleteFrom('tb_webhooks').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async list(): Promise<Webhook[]> {
    const rows = await this.db.selectFrom('tb_webhooks').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: Number(r.id),
      url: r.url,
      events: r.events.split(','),
      enabled: Number(r.enabled) === 1,
      createdAt: Number(r.created_at),
    }));
  }

  async deliveries(hookId: number | undefined, lines: number): Promise<DeliveryRow[]> {
    let q = this.db.selectFrom('tb_webhook_deliveries').selectAll();
    if (hookId !== undefined) q = q.where('hookid', '=', hookId);
    const rows = await q.orderBy('id', 'desc').limit(lines).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      eventId: r.event_id,
      hookId: Number(r.hookid),
      kind: r.kind,
      attempt: Number(r.attempt),
      state: r.state,
      statusCode: Number(r.status_code),
      latencyMs: Number(r.latency_ms),
      error: r.error,
      nextTryAt: Number(r.next_try_at),
      createdAt: Number(r.created_at),
    }));
  }

  async emit(kind: EventKind, data: Record<string, unknown>): Promise<string> {
    const id = randomUUID();
    const now = Date.now();
    const body = JSON.stringify({ id, kind, created: new Date(now).toISOString(), data });
    const hooks = (await this.list()).filter((h) => h.enabled && matches(h.events, kind));
    if (!hooks.length) return id;
    await this.db
      .insertInto('tb_webhook_deliveries')
      .values(
        hooks.map((h) => ({
          event_id: id,
          hookid: h.id,
          kind,
          body,
          attempt: 1,
          state: 'pending',
          next_try_at: now,
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    this.loop.kick();
    return id;
  }

  /** Claims the due attempts (one conditional UPDATE: another process never gets the same row) and sends them. */
  async deliverDue(): Promise<DeliveryReport> {
    const report: DeliveryReport = { delivered: 0, retry: 0, failed: 0 };
    const now = Date.now();
    const stale = now - (this.s.config.options.webhooktimeout * 1000 + 60_000);
    const claimed = await this.db
      .updateTable('tb_webhook_deliveries')
      .set({ state: 'sending', updated_at: now })
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('tb_webhook_deliveries')
          .select('id')
          .where((w) =>
            w.or([
              w.and([w('state', '=', 'pending'), w('next_try_at', '<=', now)]),
              w.and([w('state', '=', 'sending'), w('updated_at', '<', stale)]),
            ]),
          )
          .orderBy('id')
          .limit(BATCH),
      )
      .where((w) =>
        w.or([w('state', '=', 'pending'), w.and([w('state', '=', 'sending'), w('updated_at', '<', stale)])]),
      )
      .returningAll()
      .execute();
    const results = await Promise.all(claimed.map((row) => this.attempt(row)));
    for (const r of results) report[r]++;
    return report;
  }

  private async attempt(row: {
    id: number;
    event_id: string;
    hookid: number;
    kind: string;
    body: string;
    attempt: number;
  }): Promise<keyof DeliveryReport> {
    const o = this.s.config.options;
    const hook = await this.db.selectFrom('tb_webhooks').selectAll().where('id', '=', row.hookid).executeTakeFirst();
    const started = Date.now();
    let status = 0;
    let error = '';
    if (!hook || Number(hook.enabled) !== 1) {
      await this.finish(row.id, 'failed', 0, 0, 'the webhook was deleted or disabled');
      return 'failed';
    }
    try {
      await this.checkTarget(new URL(hook.url));
      const ts = String(Math.floor(started / 1000));
      const res = await fetch(hook.url, {
        method: 'POST',
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(o.webhooktimeout * 1000),
        headers: {
          'content-type': 'application/json',
          'user-agent': `voxswitch/${this.s.version}`,
          'x-voxswitch-event': row.kind,
          'x-voxswitch-id': row.event_id,
          'x-voxswitch-timestamp': ts,
          'x-voxswitch-signature': sign(this.box.decrypt(hook.secret_enc), ts, row.body),
        },
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status >= 200 && status < 300) {
        await this.finish(row.id, 'done', status, Date.now() - started, '');
        return 'delivered';
      }
      error = `HTTP ${status}`;
    } catch (e) {
      error = (e as Error).name === 'TimeoutError' ? `no answer within ${o.webhooktimeout} s` : (e as Error).message;
    }
    const latency = Date.now() - started;
    if (row.attempt >= o.webhookretries) {
      await this.finish(row.id, 'failed', status, latency, `${error} (attempt ${row.attempt}, the last)`);
      return 'failed';
    }
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('tb_webhook_deliveries')
        .set({
          state: 'retried',
          status_code: status,
          latency_ms: latency,
          error: error.slice(0, 1024),
          updated_at: now,
        })
        .where('id', '=', row.id)
        .execute();
      await trx
        .insertInto('tb_webhook_deliveries')
        .values({
          event_id: row.event_id,
          hookid: row.hookid,
          kind: row.kind,
          body: row.body,
          attempt: row.attempt + 1,
          state: 'pending',
          next_try_at: now + backoffMs(row.attempt, o.webhookretrydelay),
          created_at: now,
          updated_at: now,
        })
        .execute();
    });
    return 'retry';
  }

  /** Refuses a host name that resolves to a link-local/metadata address (unless webhookallowprivate). */
  private async checkTarget(u: URL): Promise<void> {
    if (this.s.config.options.webhookallowprivate || isIP(u.hostname.replace(/^\[|\]$/g, ''))) {
      if (!this.s.config.options.webhookallowprivate && forbiddenAddress(u.hostname))
        throw new Error('refused: link-local address');
      return;
    }
    const addrs = await lookup(u.hostname, { all: true });
    if (addrs.some((a) => forbiddenAddress(a.address)))
      throw new Error(`refused: ${u.hostname} resolves to a link-local/metadata address`);
  }

  private async finish(id: number, state: string, status: number, latency: number, error: string): Promise<void> {
    await this.db
      .updateTable('tb_webhook_deliveries')
      .set({ state, status_code: status, latency_ms: latency, error: error.slice(0, 1024), updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Deliveries waiting (pending or in flight), for checkmails' report. */
  async pending(): Promise<number> {
    const r = await this.db
      .selectFrom('tb_webhook_deliveries')
      .select(sql<number>`count(*)`.as('n'))
      .where('state', 'in', ['pending', 'sending'])
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }
}
