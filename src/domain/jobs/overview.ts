/**
 * What waits in the durable queues (SMS, e-mail, fax, webhook deliveries): the depth of each (jobs in a waiting
 * state) and its latest jobs with their state, attempts and last error. Read by the metrics gauge and the web
 * console's queue view; the table and column names are constants of this file, values go as parameters.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';

export type QueueName = 'sms' | 'mail' | 'fax' | 'webhook';

/** Queue tables, the states in which a job still waits to be done, and the column naming what a job is for. */
export const QUEUES = [
  { queue: 'sms', table: 'tb_sms', states: ['accepted', 'submitting'], target: 'destination', attempts: 'attempts' },
  { queue: 'mail', table: 'tb_mail', states: ['queued', 'sending'], target: 'to_addr', attempts: 'attempts' },
  { queue: 'fax', table: 'tb_fax', states: ['queued', 'sending'], target: 'to_num', attempts: 'attempts' },
  { queue: 'webhook', table: 'tb_webhook_deliveries', states: ['pending'], target: 'kind', attempts: 'attempt' },
] as const;

export interface QueueJob {
  id: number;
  /** The destination number, address or event kind. */
  target: string;
  state: string;
  attempts: number;
  error: string;
  /** Next try (epoch ms; 0 when none is planned). */
  nextTry: number;
  updated: number;
}

export interface QueueOverview {
  queue: QueueName;
  /** Jobs waiting (in one of the queue's waiting states). */
  depth: number;
  /** The latest jobs, most recently changed first. */
  recent: QueueJob[];
}

type AnyDb = Kysely<Record<string, Record<string, unknown>>>;

/** One queue's waiting count. */
export async function queueDepth(db: Kysely<Database>, q: (typeof QUEUES)[number]): Promise<number> {
  const row = await (db as unknown as AnyDb)
    .selectFrom(q.table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', 'in', [...q.states])
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Every queue's depth and its `recent` latest jobs. */
export async function queueOverview(db: Kysely<Database>, recent = 10): Promise<QueueOverview[]> {
  const out: QueueOverview[] = [];
  for (const q of QUEUES) {
    const rows = await (db as unknown as AnyDb)
      .selectFrom(q.table)
      .select(['id', 'state', 'error', 'next_try_at', 'updated_at', `${q.target} as target`, `${q.attempts} as n`])
      .orderBy('updated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(recent)
      .execute();
    out.push({
      queue: q.queue,
      depth: await queueDepth(db, q),
      recent: rows.map((r) => ({
        id: Number(r.id),
        target: String(r.target ?? ''),
        state: String(r.state),
        attempts: Number(r.n ?? 0),
        error: String(r.error ?? ''),
        nextTry: (q.states as readonly string[]).includes(String(r.state)) ? Number(r.next_try_at ?? 0) : 0,
        updated: Number(r.updated_at ?? 0),
      })),
    });
  }
  return out;
}
