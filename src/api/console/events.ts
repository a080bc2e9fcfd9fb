/**
 * Live views over server-sent events: every second the console's connection runs `endpoints`, `quickstat`,
 * `bannedlist` and `gateways` as the logged-in user (through the gateway, with that user's levels), reads the queue
 * overview (admins only, domain/jobs/overview.ts) and sends each view whose answer changed. `?views=a,b` picks some
 * of them. The stream ends when the session does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiGateway } from '../gateway.js';
import type { User } from '../../domain/accounts/users.js';
import type { Source } from '../types.js';
import type { Session } from './sessions.js';
import type { ApiResult } from '../types.js';
import { rankOf } from '../../domain/accounts/types.js';
import { queueOverview } from '../../domain/jobs/overview.js';
import type { Services } from '../../services.js';
import { SECURITY_HEADERS } from './web.js';

export const VIEWS: ReadonlyArray<{ view: string; command?: string }> = [
  { view: 'registrations', command: 'endpoints' },
  { view: 'calls', command: 'quickstat' },
  { view: 'bans', command: 'bannedlist' },
  { view: 'gateways', command: 'gateways' },
  { view: 'queues' },
];
/** The rank that sees the queues (server admins and admins, as the queue commands' level 6). */
const QUEUE_RANK = 6;
const TICK_MS = 1000;

export class LiveEvents {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly gateway: ApiGateway,
    private readonly s: Services,
  ) {}

  /** The queue view: each queue's depth and latest jobs, as an answer shaped like a command's. */
  private async queues(user: User): Promise<Partial<ApiResult>> {
    if (rankOf(user.type) > QUEUE_RANK) return { ok: false, text: 'the queues are shown to admins only' };
    const all = await queueOverview(this.s.storage.db);
    return {
      ok: true,
      text: all.map((q) => `${q.queue}: ${q.depth} waiting`).join(', '),
      fields: Object.fromEntries(all.map((q) => [q.queue, q.depth])),
      columns: ['queue', 'id', 'target', 'state', 'attempts', 'error', 'next', 'updated'],
      rows: all.flatMap((q) =>
        q.recent.map((j) => ({
          queue: q.queue,
          id: j.id,
          target: j.target,
          state: j.state,
          attempts: j.attempts,
          error: j.error,
          next: j.nextTry ? new Date(j.nextTry).toISOString() : '',
          updated: j.updated ? new Date(j.updated).toISOString() : '',
        })),
      ),
    };
  }

  stream(
    req: IncomingMessage,
    res: ServerResponse,
    user: User,
    source: Source,
    alive: () => Promise<Session | undefined>,
    only?: string[],
  ): void {
    const views = only?.length ? VIEWS.filter((v) => only.includes(v.view)) : VIEWS;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const last = new Map<string, string>();
    let busy = false;
    let ticks = 0;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        // the session is checked every few seconds: a log-out or expiry ends the stream
        if (ticks++ % 5 === 0 && !(await alive())) return stop();
        for (const { view, command } of views) {
          const r = command ? await this.gateway.handleAs(user.id, command, {}, source) : await this.queues(user);
          const data = JSON.stringify({ ok: r.ok, text: r.text, fields: r.fields, rows: r.rows, columns: r.columns });
          if (last.get(view) === data) continue;
          last.set(view, data);
          res.write(`event: ${view}\ndata: ${data}\n\n`);
        }
      } catch {
        stop();
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), TICK_MS);
    const stop = () => {
      clearInterval(timer);
      this.open.delete(stop);
      res.end();
    };
    this.open.add(stop);
    req.on('close', stop);
    void tick();
  }

  close(): void {
    for (const stop of [...this.open]) stop();
  }
}
