/**
 * Webhook commands (admins): addwebhook, delwebhook, webhooks, webhookdeliveries. The work (signing, retries,
 * the delivery log) is in domain/events; docs/webhooks.md tells a receiver how to verify.
 */
import { ok, ApiError, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';

const positiveId = (v: string | undefined, field: string): number => {
  const n = Number((v ?? '').trim());
  if (!Number.isSafeInteger(n) || n <= 0) throw new ApiError(`${field}: expected a webhook id (see webhooks)`);
  return n;
};

async function addwebhook(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const h = await ctx.services.webhooks.add(p.url ?? '', p.events ?? '', p.secret ?? '');
  return ok(`webhook ${h.id} added: ${h.url} for ${h.events.join(',')}`, {
    fields: { id: h.id, url: h.url, events: h.events.join(',') },
  });
}

async function delwebhook(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const id = positiveId(p.id, 'id');
  if (!(await ctx.services.webhooks.remove(id))) throw new ApiError(`id: no webhook ${id}`, 404);
  return ok(`webhook ${id} deleted`, { fields: { id } });
}

async function webhooks(ctx: CommandContext): Promise<ApiResult> {
  const list = await ctx.services.webhooks.list();
  return ok(`${list.length} webhook(s)`, {
    columns: ['id', 'url', 'events', 'enabled', 'created'],
    rows: list.map((h) => ({
      id: h.id,
      url: h.url,
      events: h.events.join(','),
      enabled: h.enabled ? 1 : 0,
      created: new Date(h.createdAt).toISOString(),
    })),
  });
}

async function deliveries(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const hook = p.hookid?.trim() ? positiveId(p.hookid, 'hookid') : undefined;
  const lines = p.lines?.trim() ? Number(p.lines) : 50;
  if (!Number.isInteger(lines) || lines < 1 || lines > 1000) throw new ApiError('lines: expected 1 to 1000');
  const rows = await ctx.services.webhooks.deliveries(hook, lines);
  return ok(`${rows.length} delivery attempt(s)`, {
    columns: ['id', 'event_id', 'hookid', 'kind', 'attempt', 'state', 'status', 'latency_ms', 'error', 'next_try'],
    rows: rows.map((d) => ({
      id: d.id,
      event_id: d.eventId,
      hookid: d.hookId,
      kind: d.kind,
      attempt: d.attempt,
      state: d.state,
      status: d.statusCode,
      latency_ms: d.latencyMs,
      error: d.error,
      next_try: d.state === 'pending' ? new Date(d.nextTryAt).toISOString() : '',
    })),
  });
}

export const webhookCommands: CommandDef[] = [
  {
    name: 'addwebhook',
    params: ['url', 'events', 'secret'],
    level: 6,
    description:
      'register a webhook: url (http/https), events (sms.status, sms.incoming, mail.failed, fax.status, call.*, *), ' +
      'secret (16+ characters; signs each delivery)',
    run: addwebhook,
  },
  { name: 'delwebhook', params: ['id'], level: 6, description: 'delete a webhook', run: delwebhook },
  { name: 'webhooks', params: [], level: 6, description: 'list the webhooks (never the secrets)', run: webhooks },
  {
    name: 'webhookdeliveries',
    params: ['hookid', 'lines'],
    level: 6,
    description: 'the latest delivery attempts (of one hook): event id, attempt, state, HTTP status, latency, error',
    run: deliveries,
  },
];
