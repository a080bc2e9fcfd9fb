/**
 * The e-mail service: `enqueue` validates a message and stores it in tb_mail (state queued); the queue job
 * claims due rows with one conditional UPDATE … RETURNING (two processes never send one row), sends them through
 * the SMTP relay, and records the outcome: sent, queued again with exponential back-off after a temporary error
 * (4xx, no connection), or failed (5xx, or the last attempt) — which emits `mail.failed`. The Message-ID is fixed
 * at enqueue, so a retry after a crash carries the same one.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { DomainServices } from '../deps.js';
import { DomainError } from '../errors.js';
import { JobLoop, backoffMs } from '../jobs/loop.js';
import type { Events } from '../events/webhooks.js';
import { readConfined } from '../fax/files.js';
import { checkAddress, checkRecipients, refuseHeaderInjection } from './address.js';
import { SendFailure, smtpTransport, type MailTransport } from './smtp.js';

export const MAIL_OPTIONS_HINT =
  'e-mail is not configured: set smtphost (with smtpport, smtpsecure, smtpuser/smtppassword and smtpfrom) in ' +
  'voxswitch.conf or with --set, then reload';
const MAX_SUBJECT = 500;
const MAX_BODY = 1024 * 1024;
const BATCH = 20;

export interface NewMail {
  userId: number;
  from: string;
  to: string;
  subject: string;
  body: string;
  /** a file of the confined storage (`<datadir>/files/<area>/<name>`), attached as `filename` */
  attachment?: { area: string; name: string; filename: string; type: string };
  /** what the message belongs to ("fax:12"); the finish listeners get it */
  ref?: string;
}

export interface MailStatus {
  id: number;
  userId: number;
  from: string;
  to: string;
  subject: string;
  state: string;
  attempts: number;
  nextTryAt: number;
  error: string;
  messageId: string;
  createdAt: number;
  updatedAt: number;
}

export interface QueueReport {
  sent: number;
  failed: number;
  retry: number;
  /** still waiting after the run (due later) */
  queued: number;
}

export type MailFinished = (m: { id: number; ref: string; state: 'sent' | 'failed'; error: string }) => Promise<void>;

export class Mailer {
  readonly loop: JobLoop<QueueReport>;
  private readonly finished: MailFinished[] = [];

  constructor(
    private readonly s: DomainServices,
    private readonly events: Events,
    /** Builds the relay transport for a queue run (default: nodemailer from the smtp* options). */
    private readonly transport: () => MailTransport = () => smtpTransport(s.config.options, s.config.dataDir),
  ) {
    this.loop = new JobLoop(
      'mail',
      () => this.runQueue(),
      s.log,
      () => s.config.options.mailqueueinterval,
    );
  }

  private get db() {
    return this.s.storage.db;
  }

  get configured(): boolean {
    return this.s.config.options.smtphost !== '';
  }

  /** Throws the ERROR naming the options when no relay is configured. */
  requireConfigured(): void {
    if (!this.configured) throw new DomainError(MAIL_OPTIONS_HINT, 'config');
  }

  /** Called when a message is sent or has failed for good (the fax service follows its faxes this way). */
  onFinished(fn: MailFinished): void {
    this.finished.push(fn);
  }

  /** Refuses a user who queued smtpmaxperhour e-mails within the last hour. */
  async checkHourlyLimit(userId: number): Promise<void> {
    const max = this.s.config.options.smtpmaxperhour;
    if (!max) return;
    const r = await this.db
      .selectFrom('tb_mail')
      .select(sql<number>`count(*)`.as('n'))
      .where('userid', '=', userId)
      .where('created_at', '>', Date.now() - 3600_000)
      .executeTakeFirst();
    if (Number(r?.n ?? 0) >= max)
      throw new DomainError(`too many e-mails: at most ${max} per hour (option smtpmaxperhour)`, 'denied');
  }

  /** Validates and queues a message; answers its id. Nothing is stored when any part is refused. */
  async enqueue(m: NewMail, db: Kysely<Database> = this.db): Promise<{ id: number; messageId: string }> {
    this.requireConfigured();
    const from = checkAddress('from', m.from);
    const to = checkRecipients('to', m.to);
    refuseHeaderInjection('subject', m.subject);
    if (m.subject.length > MAX_SUBJECT) throw new DomainError(`subject: longer than ${MAX_SUBJECT} characters`);
    if (Buffer.byteLength(m.body) > MAX_BODY) throw new DomainError(`message: larger than ${MAX_BODY} bytes`);
    if (m.attachment) refuseHeaderInjection('filename', m.attachment.filename);
    const now = Date.now();
    const messageId = `<${randomUUID()}@${from.slice(from.lastIndexOf('@') + 1)}>`;
    const row = await db
      .insertInto('tb_mail')
      .values({
        userid: m.userId,
        from_addr: from,
        to_addr: to.join(', '),
        subject: m.subject,
        body: m.body,
        attachment: m.attachment ? JSON.stringify(m.attachment) : null,
        ref: m.ref ?? '',
        state: 'queued',
        next_try_at: now,
        message_id: messageId,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    this.loop.kick();
    return { id: Number(row.id), messageId };
  }

  async status(id: number): Promise<MailStatus | undefined> {
    const r = await this.db.selectFrom('tb_mail').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return {
      id: Number(r.id),
      userId: Number(r.userid),
      from: r.from_addr,
      to: r.to_addr,
      subject: r.subject,
      state: r.state,
      attempts: Number(r.attempts),
      nextTryAt: Number(r.next_try_at),
      error: r.error,
      messageId: r.message_id,
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    };
  }

  /** Sends every due message (in batches) and answers what happened. */
  async runQueue(): Promise<QueueReport> {
    const report: QueueReport = { sent: 0, failed: 0, retry: 0, queued: 0 };
    // rows due at the start of the run: a message retried during it waits for the next run
    const start = Date.now();
    while (this.configured) {
      const rows = await this.claim(start);
      if (!rows.length) break;
      const t = this.transport();
      try {
        for (const r of rows) report[await this.sendOne(t, r, start)]++;
      } finally {
        t.close();
      }
      if (rows.length < BATCH) break;
    }
    const q = await this.db
      .selectFrom('tb_mail')
      .select(sql<number>`count(*)`.as('n'))
      .where('state', 'in', ['queued', 'sending'])
      .executeTakeFirst();
    report.queued = Number(q?.n ?? 0);
    return report;
  }

  /** Due rows (and rows a stopped process left in `sending`), claimed in one statement. */
  private async claim(due0: number) {
    const now = Date.now();
    const stale = now - 3 * (this.s.config.options.smtptimeout * 1000 + 60_000);
    const due = (w: any) =>
      w.or([
        w.and([w('state', '=', 'queued'), w('next_try_at', '<=', due0)]),
        w.and([w('state', '=', 'sending'), w('updated_at', '<', stale)]),
      ]);
    return this.db
      .updateTable('tb_mail')
      .set({ state: 'sending', updated_at: now })
      .where('id', 'in', (eb) => eb.selectFrom('tb_mail').select('id').where(due).orderBy('id').limit(BATCH))
      .where(due)
      .returningAll()
      .execute();
  }

  private async sendOne(
    t: MailTransport,
    r: { id: number; from_addr: string; to_addr: string; subject: string; body: string } & {
      attachment: string | null;
      ref: string;
      attempts: number;
      message_id: string;
      userid: number;
    },
    runStart: number,
  ): Promise<'sent' | 'failed' | 'retry'> {
    const o = this.s.config.options;
    const attempts = Number(r.attempts) + 1;
    let failure: SendFailure;
    try {
      let attachment;
      if (r.attachment) {
        const a = JSON.parse(r.attachment) as NonNullable<NewMail['attachment']>;
        const f = await readConfined(this.s.config.dataDir, a.area, a.name, o.faxmaxsize).catch((e: Error) => {
          throw new SendFailure(`attachment: ${e.message}`, false);
        });
        attachment = { filename: a.filename, contentType: a.type, content: f.content };
      }
      const to = r.to_addr.split(', ');
      await t.send({ from: r.from_addr, to, subject: r.subject, text: r.body, messageId: r.message_id, attachment });
      await this.mark(r.id, { state: 'sent', attempts, error: '' });
      await this.finish(r.id, r.ref, 'sent', '');
      return 'sent';
    } catch (e) {
      failure = e instanceof SendFailure ? e : new SendFailure((e as Error).message, true);
    }
    const last = attempts >= o.smtpretries;
    if (failure.temporary && !last) {
      const next = Math.max(Date.now() + backoffMs(attempts, o.smtpretrydelay), runStart + 1);
      await this.mark(r.id, { state: 'queued', attempts, error: failure.message, next_try_at: next });
      return 'retry';
    }
    const error = failure.temporary ? `${failure.message} (attempt ${attempts}, the last)` : failure.message;
    await this.mark(r.id, { state: 'failed', attempts, error });
    this.s.log.warn({ mail: r.id, error }, 'e-mail failed');
    await this.events
      .emit('mail.failed', { id: r.id, userid: r.userid, from: r.from_addr, to: r.to_addr, ref: r.ref, error })
      .catch((e: unknown) => this.s.log.error({ err: e }, 'mail.failed event not stored'));
    await this.finish(r.id, r.ref, 'failed', error);
    return 'failed';
  }

  private async mark(
    id: number,
    v: { state: string; attempts: number; error: string; next_try_at?: number },
  ): Promise<void> {
    const set = { ...v, error: v.error.slice(0, 1024), updated_at: Date.now() };
    await this.db.updateTable('tb_mail').set(set).where('id', '=', id).execute();
  }

  private async finish(id: number, ref: string, state: 'sent' | 'failed', error: string): Promise<void> {
    for (const fn of this.finished) {
      await fn({ id, ref, state, error }).catch((e: unknown) => this.s.log.error({ err: e, mail: id }, 'listener'));
    }
  }
}
