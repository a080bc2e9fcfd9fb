/**
 * E-mail commands: sendmail (users, from-address rules of smtpallowfrom), asendemail (admins, any sender),
 * checkmails (runs the queue now and reports), mailstatus (one message's state). The work is in domain/mail.
 */
import { ok, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { callerOf } from './target.js';
import { isAdminType } from '../../domain/accounts/types.js';
import { may } from '../../domain/accounts/access.js';
import { chooseFrom } from '../../domain/mail/address.js';

async function send(ctx: CommandContext, p: Record<string, string>, what: string, admin: boolean): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, what);
  s.mailer.requireConfigured();
  const o = s.config.options;
  const anySender = admin || isAdminType(caller.type);
  const from = chooseFrom({ rules: o.smtpallowfrom, defaultFrom: o.smtpfrom }, p.from ?? '', caller.email, anySender);
  if (!anySender) await s.mailer.checkHourlyLimit(caller.id);
  const m = await s.mailer.enqueue({
    userId: caller.id,
    from,
    to: p.to ?? '',
    subject: p.subject ?? '',
    body: p.message ?? '',
  });
  return ok(`e-mail queued: id ${m.id}`, { fields: { id: m.id, messageid: m.messageId, state: 'queued' } });
}

async function checkmails(ctx: CommandContext): Promise<ApiResult> {
  const s = ctx.services;
  s.mailer.requireConfigured();
  const r = await s.mailer.loop.run();
  return ok(`sent ${r.sent}, failed ${r.failed}, retry ${r.retry}, queued ${r.queued}`, { fields: { ...r } });
}

async function mailstatus(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'mailstatus');
  const id = Number((p.id ?? '').trim());
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError('id: expected the id sendmail answered');
  const m = await s.mailer.status(id);
  const owner = m && (m.userId === caller.id ? caller : await s.users.byId(m.userId));
  if (!m || !owner || !(await may(s.users, caller, 'see', owner))) throw new ApiError(`id: no e-mail ${id}`, 404);
  const fields = {
    id: m.id,
    state: m.state,
    attempts: m.attempts,
    from: m.from,
    to: m.to,
    subject: m.subject,
    error: m.error,
    messageid: m.messageId,
    next_try: m.state === 'queued' ? new Date(m.nextTryAt).toISOString() : '',
    created: new Date(m.createdAt).toISOString(),
    updated: new Date(m.updatedAt).toISOString(),
  };
  return ok(`e-mail ${m.id}: ${m.state}${m.error ? ` (${m.error})` : ''}`, { fields });
}

export const mailCommands: CommandDef[] = [
  {
    name: 'sendmail',
    params: ['from', 'to', 'subject', 'message'],
    level: 12,
    description: 'send e-mail (from may be empty: smtpfrom); queued, answers the id (mailstatus)',
    run: (ctx, p) => send(ctx, p, 'sendmail', false),
  },
  {
    name: 'asendemail',
    params: ['from', 'to', 'subject', 'message'],
    level: 6,
    description: 'send e-mail as an admin (any from-address; empty: smtpfrom)',
    run: (ctx, p) => send(ctx, p, 'asendemail', true),
  },
  {
    name: 'checkmails',
    params: [],
    level: 6,
    description: 'run the e-mail queue now: sent, failed, retry (temporary error, later) and still queued',
    run: checkmails,
  },
  {
    name: 'mailstatus',
    params: ['id'],
    level: 12,
    description: 'state of a queued e-mail (queued, sending, sent, failed), attempts and the last error',
    run: mailstatus,
  },
];
