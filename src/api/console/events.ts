/**
 * Live views over server-sent events: every second the console's connection runs `endpoints`, `quickstat`,
 * `bannedlist` and `gateways` as the logged-in user (through the gateway, with that user's levels) and sends each
 * view whose answer changed. The stream ends when the session does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiGateway } from '../gateway.js';
import type { User } from '../../domain/accounts/users.js';
import type { Source } from '../types.js';
import type { Session } from './sessions.js';
import { SECURITY_HEADERS } from './web.js';

export const VIEWS: ReadonlyArray<{ view: string; command: string }> = [
  { view: 'registrations', command: 'endpoints' },
  { view: 'calls', command: 'quickstat' },
  { view: 'bans', command: 'bannedlist' },
  { view: 'gateways', command: 'gateways' },
];
const TICK_MS = 1000;

export class LiveEvents {
  private readonly open = new Set<() => void>();

  constructor(private readonly gateway: ApiGateway) {}

  stream(
    req: IncomingMessage,
    res: ServerResponse,
    user: User,
    source: Source,
    alive: () => Promise<Session | undefined>,
  ): void {
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
        for (const { view, command } of VIEWS) {
          const r = await this.gateway.handleAs(user.id, command, {}, source);
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
