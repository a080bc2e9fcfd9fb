/**
 * sendfax: a PDF or TIFF of the confined fax folder goes to the fax service the operator configures — an
 * e-mail-to-fax gateway (the file attached to NUMBER@faxemaildomain, through the mail queue) or an HTTP fax API
 * (POST of the file to faxhttpurl). The fax is charged once when accepted (faxprice per page or per fax, in the
 * row's transaction) and refunded once if it fails for good; each change of state emits `fax.status`.
 * T.38 over SIP is not supported.
 */
import { basename } from 'node:path';
import type { DomainServices } from '../deps.js';
import type { User } from '../accounts/users.js';
import { DomainError } from '../errors.js';
import { InsufficientCredit } from '../billing/ledger.js';
import { formatAmount, parseAmount } from '../billing/amount.js';
import { JobLoop, backoffMs } from '../jobs/loop.js';
import type { Events } from '../events/webhooks.js';
import type { Mailer } from '../mail/mailer.js';
import { readConfined } from './files.js';
import { faxDocument } from './pages.js';

export const NO_FAX =
  'fax is not configured (faxmode=none) and fax over SIP (T.38) is not supported: set faxmode=email with ' +
  'faxemaildomain (an e-mail-to-fax gateway; needs smtphost) or faxmode=http with faxhttpurl';

export interface Fax {
  id: number;
  userId: number;
  from: string;
  to: string;
  filename: string;
  pages: number;
  cost: number;
  currency: string;
  mode: string;
  state: string;
  attempts: number;
  error: string;
  mailId: number | null;
  createdAt: number;
}

const NUMBER = /^\+?[0-9]{3,20}$/;

export class FaxService {
  readonly loop: JobLoop<{ sent: number; failed: number; retry: number }>;

  constructor(
    private readonly s: DomainServices,
    private readonly mailer: Mailer,
    private readonly events: Events,
  ) {
    this.loop = new JobLoop(
      'fax',
      () => this.runHttp(),
      s.log,
      () => s.config.options.mailqueueinterval,
    );
    mailer.onFinished(async (m) => {
      if (m.ref.startsWith('fax:')) await this.finish(Number(m.ref.slice(4)), m.state, m.error);
    });
  }

  private get db() {
    return this.s.storage.db;
  }

  /** Checks, charges and queues a fax; answers it (state queued). Nothing is stored or charged on a refusal. */
  async send(user: User, fromRaw: string, toRaw: string, filename: string): Promise<Fax> {
    const o = this.s.config.options;
    if (o.faxmode === 'none') throw new DomainError(NO_FAX, 'config');
    if (o.faxmode === 'email') {
      if (!o.faxemaildomain) throw new DomainError('faxmode=email needs faxemaildomain (the gateway domain)', 'config');
      this.mailer.requireConfigured();
    }
    if (o.faxmode === 'http' && !/^https?:\/\//.test(o.faxhttpurl))
      throw new DomainError('faxmode=http needs faxhttpurl (http(s)://… with {to} and {from})', 'config');
    const to = toRaw.trim().replace(/[\s-]/g, '');
    if (!NUMBER.test(to)) throw new DomainError('to: expected a fax number (digits, optional leading +)');
    const from = (fromRaw.trim() || user.did || user.phone || '').replace(/[\s-]/g, '');
    if (from && !NUMBER.test(from)) throw new DomainError('from: expected a number (digits, optional leading +)');
    const file = await readConfined(this.s.config.dataDir, 'fax', filename.trim(), o.faxmaxsize);
    const doc = faxDocument(file.content);
    const unit = parseAmount(o.faxprice) ?? 0;
    const cost = unit * (o.faxpriceper === 'page' ? doc.pages : 1);
    const now = Date.now();
    const mailFrom = o.smtpfrom || user.email;
    if (o.faxmode === 'email' && !mailFrom)
      throw new DomainError('fax by e-mail needs a sender: set smtpfrom (or an e-mail on the account)', 'config');
    let id = 0;
    try {
      id = await this.s.ledger.transaction(async (trx) => {
        const row = await trx
          .insertInto('tb_fax')
          .values({
            userid: user.id,
            from_num: from,
            to_num: to,
            filename: file.name,
            pages: doc.pages,
            cost,
            currency: user.currency,
            mode: o.faxmode,
            state: 'queued',
            next_try_at: now,
            created_at: now,
            updated_at: now,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        const faxId = Number(row.id);
        if (cost > 0)
          await this.s.ledger.postIn(trx, { userId: user.id, amount: -cost, reason: 'fax', ref: `fax:${faxId}` });
        if (o.faxmode === 'email') {
          const mail = await this.mailer.enqueue(
            {
              userId: user.id,
              from: mailFrom,
              to: `${to.replace(/^\+/, '')}@${o.faxemaildomain}`,
              subject: `Fax to ${to}${from ? ` from ${from}` : ''}`,
              body: `Fax of ${doc.pages} page(s) from ${from || user.username}.`,
              attachment: { area: 'fax', name: file.name, filename: basename(file.name), type: doc.type },
              ref: `fax:${faxId}`,
            },
            trx,
          );
          await trx.updateTable('tb_fax').set({ mailid: mail.id }).where('id', '=', faxId).execute();
        }
        return faxId;
      });
    } catch (e) {
      if (!(e instanceof InsufficientCredit)) throw e;
      const bal = await this.s.ledger.balance(user.id);
      throw new DomainError(
        `credit short: the fax (${doc.pages} page(s)) costs ${formatAmount(cost)} ${user.currency}, the balance is ` +
          `${formatAmount(bal?.credit ?? 0)} ${user.currency}`,
        'insufficient',
      );
    }
    if (o.faxmode === 'http') this.loop.kick();
    await this.announce(id);
    return (await this.status(id))!;
  }

  async status(id: number): Promise<Fax | undefined> {
    const r = await this.db.selectFrom('tb_fax').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return {
      id: Number(r.id),
      userId: Number(r.userid),
      from: r.from_num,
      to: r.to_num,
      filename: r.filename,
      pages: Number(r.pages),
      cost: Number(r.cost),
      currency: r.currency,
      mode: r.mode,
      state: r.state,
      attempts: Number(r.attempts),
      error: r.error,
      mailId: r.mailid === null ? null : Number(r.mailid),
      createdAt: Number(r.created_at),
    };
  }

  /** The final state of a fax, once: a failure refunds the charge in the same transaction. */
  private async finish(id: number, state: 'sent' | 'failed', error: string): Promise<void> {
    const changed = await this.s.ledger.transaction(async (trx) => {
      const r = await trx
        .updateTable('tb_fax')
        .set({ state, error: error.slice(0, 1024), updated_at: Date.now() })
        .where('id', '=', id)
        .where('state', 'in', ['queued', 'sending'])
        .returning(['userid', 'cost'])
        .executeTakeFirst();
      if (r && state === 'failed' && Number(r.cost) > 0)
        await this.s.ledger.postIn(trx, {
          userId: Number(r.userid),
          amount: Number(r.cost),
          reason: 'fax refund',
          ref: `fax:${id}`,
        });
      return r !== undefined;
    });
    if (changed) await this.announce(id);
  }

  private async announce(id: number): Promise<void> {
    const f = await this.status(id);
    if (!f) return;
    const data = { id: f.id, userid: f.userId, from: f.from, to: f.to, pages: f.pages, state: f.state, error: f.error };
    await this.events.emit('fax.status', data).catch((e: unknown) => this.s.log.error({ err: e }, 'fax.status'));
  }

  /** Posts the due HTTP faxes (claimed in one statement) and answers what happened. */
  async runHttp(): Promise<{ sent: number; failed: number; retry: number }> {
    const out = { sent: 0, failed: 0, retry: 0 };
    const o = this.s.config.options;
    const now = Date.now();
    const stale = now - 10 * 60_000;
    const due = (w: any) =>
      w.and([
        w('mode', '=', 'http'),
        w.or([
          w.and([w('state', '=', 'queued'), w('next_try_at', '<=', now)]),
          w.and([w('state', '=', 'sending'), w('updated_at', '<', stale)]),
        ]),
      ]);
    const rows = await this.db
      .updateTable('tb_fax')
      .set({ state: 'sending', updated_at: now })
      .where('id', 'in', (eb) => eb.selectFrom('tb_fax').select('id').where(due).orderBy('id').limit(10))
      .where(due)
      .returningAll()
      .execute();
    for (const r of rows) {
      const attempts = Number(r.attempts) + 1;
      let error = '';
      let temporary = true;
      try {
        const file = await readConfined(this.s.config.dataDir, 'fax', r.filename, o.faxmaxsize);
        const doc = faxDocument(file.content);
        const url = o.faxhttpurl
          .replaceAll('{to}', encodeURIComponent(r.to_num))
          .replaceAll('{from}', encodeURIComponent(r.from_num));
        const headers: Record<string, string> = {
          'content-type': doc.type,
          'x-voxswitch-fax-id': String(r.id),
          'x-voxswitch-filename': encodeURIComponent(basename(r.filename)),
        };
        if (o.faxhttpauth) headers.authorization = o.faxhttpauth;
        const res = await fetch(url, {
          method: 'POST',
          body: file.content,
          headers,
          redirect: 'manual',
          signal: AbortSignal.timeout(o.smtptimeout * 1000),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) {
          await this.db.updateTable('tb_fax').set({ attempts }).where('id', '=', r.id).execute();
          await this.finish(Number(r.id), 'sent', '');
          out.sent++;
          continue;
        }
        error = `HTTP ${res.status}`;
        temporary = res.status >= 500 || res.status === 408 || res.status === 429;
      } catch (e) {
        error = e instanceof DomainError ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
        temporary = !(e instanceof DomainError);
      }
      if (temporary && attempts < o.faxretries) {
        const next = Date.now() + backoffMs(attempts, o.faxretrydelay);
        await this.db
          .updateTable('tb_fax')
          .set({ state: 'queued', attempts, error: error.slice(0, 1024), next_try_at: next, updated_at: Date.now() })
          .where('id', '=', r.id)
          .execute();
        out.retry++;
      } else {
        await this.db.updateTable('tb_fax').set({ attempts }).where('id', '=', r.id).execute();
        await this.finish(Number(r.id), 'failed', temporary ? `${error} (attempt ${attempts}, the last)` : error);
        out.failed++;
      }
    }
    return out;
  }
}
