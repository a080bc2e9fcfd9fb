/** Fax commands: sendfax (a PDF/TIFF of <datadir>/files/fax/ to a number) and faxstatus. Work in domain/fax. */
import { ok, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { callerOf } from './target.js';
import { may } from '../../domain/accounts/access.js';
import { formatAmount } from '../../domain/billing/amount.js';
import { isAdminType } from '../../domain/accounts/types.js';
import type { Fax } from '../../domain/fax/service.js';

function faxFields(f: Fax): Record<string, string | number> {
  return {
    id: f.id,
    state: f.state,
    to: f.to,
    from: f.from,
    filename: f.filename,
    pages: f.pages,
    cost: formatAmount(f.cost),
    currency: f.currency,
    mode: f.mode,
    attempts: f.attempts,
    error: f.error,
  };
}

async function sendfax(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'sendfax');
  if (!isAdminType(caller.type)) await s.mailer.checkHourlyLimit(caller.id);
  const f = await s.fax.send(caller, p.from ?? '', p.to ?? '', p.filename ?? '');
  return ok(`fax queued: id ${f.id}, ${f.pages} page(s), ${formatAmount(f.cost)} ${f.currency}`, {
    fields: faxFields(f),
  });
}

async function faxstatus(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'faxstatus');
  const id = Number((p.id ?? '').trim());
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError('id: expected the id sendfax answered');
  const f = await s.fax.status(id);
  const owner = f && (f.userId === caller.id ? caller : await s.users.byId(f.userId));
  if (!f || !owner || !(await may(s.users, caller, 'see', owner))) throw new ApiError(`id: no fax ${id}`, 404);
  return ok(`fax ${f.id}: ${f.state}${f.error ? ` (${f.error})` : ''}`, { fields: faxFields(f) });
}

export const faxCommands: CommandDef[] = [
  {
    name: 'sendfax',
    params: ['from', 'to', 'filename'],
    level: 12,
    description:
      'send a PDF/TIFF of the fax folder (<datadir>/files/fax/) through the configured fax service (faxmode); ' +
      'no T.38 over SIP',
    run: sendfax,
  },
  {
    name: 'faxstatus',
    params: ['id'],
    level: 12,
    description: 'state of a fax (queued, sending, sent, failed), pages, cost and the last error',
    run: faxstatus,
  },
];
