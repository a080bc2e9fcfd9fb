/**
 * The low-credit notice: when a debit (a call's CDR, an SMS, a fax, a transfer, …) takes an account's credit below
 * `lowcreditlimit`, one e-mail to the account's address (tb_users.email) through the e-mail queue, queued in the
 * debit's own transaction (the ledger's LowCreditWatch). The ledger calls it once per crossing: a further debit
 * below the limit sends nothing, a credit back at or above the limit re-arms it.
 */
import type { Logger } from 'pino';
import type { Transaction } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';
import type { Crossing, LowCreditWatch } from '../billing/ledger.js';
import { formatAmount, parseAmount } from '../billing/amount.js';
import { DomainError } from '../errors.js';
import type { Mailer } from './mailer.js';

export class LowCreditNotices implements LowCreditWatch {
  constructor(
    private readonly mailer: Mailer,
    private readonly config: ConfigStore,
    private readonly log: Logger,
  ) {}

  /** The limit in micro-units; 0 (off) while e-mail or its sender address is not configured. */
  limit(): number {
    const o = this.config.options;
    if (!this.mailer.configured || !o.smtpfrom) return 0;
    return parseAmount(o.lowcreditlimit) ?? 0;
  }

  async crossed(trx: Transaction<Database>, c: Crossing): Promise<void> {
    const u = await trx
      .selectFrom('tb_users')
      .select(['username', 'name', 'email'])
      .where('id', '=', c.userId)
      .executeTakeFirst();
    const line = { user: c.userId, balance: formatAmount(c.balance), limit: formatAmount(c.limit), reason: c.reason };
    if (!u?.email) {
      this.log.info(line, 'credit below lowcreditlimit: the account has no e-mail address, no notice');
      return;
    }
    const balance = `${formatAmount(c.balance)} ${c.currency}`;
    const body =
      `Hello ${u.name || u.username},\n\n` +
      `the credit of your account "${u.username}" is now ${balance}, below ${formatAmount(c.limit)} ${c.currency}.\n` +
      'Please recharge it to keep calling and messaging without interruption.\n\n' +
      'This notice is sent once each time the credit falls below that amount.\n';
    const m = { userId: c.userId, from: this.config.options.smtpfrom, to: u.email, body, ref: `lowcredit:${c.userId}` };
    try {
      const q = await this.mailer.enqueue({ ...m, subject: `Low credit: ${balance}` }, trx);
      this.log.info({ ...line, mail: q.id }, 'low-credit notice queued');
    } catch (e) {
      // a refused address (checked before anything is written): no notice, the debit stands
      if (!(e instanceof DomainError)) throw e;
      this.log.warn({ ...line, error: e.message }, 'low-credit notice not queued');
    }
    // the row commits with the debit: the queue's next run (kicked after the commit) sends it
    setTimeout(() => this.mailer.loop.kick(), 50).unref();
  }

  failed(e: unknown, c: Crossing): void {
    this.log.error({ err: e, user: c.userId }, 'low-credit notice failed (the debit stands)');
  }
}
