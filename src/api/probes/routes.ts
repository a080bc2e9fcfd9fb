/**
 * GET /metrics (Prometheus text) and GET /health (for load balancers) on the API port. Both answer only sources
 * in `metricsallow` or loopback (403 otherwise), from the socket's own address: a proxy header never widens access.
 * /health is 200 while the database answers within a second and the server is not draining, else 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sql } from 'kysely';
import type { Services } from '../../services.js';
import { IpSet, isLoopback, normalizeIp } from '../../domain/security/ip.js';
import { Metrics } from './metrics.js';

const HEALTH_DB_TIMEOUT_MS = 1000;

export class ProbeRoutes {
  private allow: IpSet;

  constructor(
    private readonly s: Services,
    readonly metrics: Metrics,
  ) {
    this.allow = new IpSet(s.config.options.metricsallow);
    s.config.onChange((n) => (this.allow = new IpSet(n.metricsallow)));
  }

  /** Answers /metrics and /health; false for any other path (the caller goes on). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/metrics' && path !== '/health') return false;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' });
      res.end('use GET\n');
      return true;
    }
    const ip = normalizeIp(req.socket.remoteAddress ?? '');
    if (!isLoopback(ip) && !this.allow.has(ip)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${path} is not open to ${ip}: add the address to the option metricsallow\n`);
      return true;
    }
    if (path === '/metrics') {
      const body = await this.metrics.text();
      res.writeHead(200, { 'content-type': this.metrics.contentType, 'cache-control': 'no-store' });
      res.end(head ? undefined : body);
      return true;
    }
    const h = await this.health();
    res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(head ? undefined : JSON.stringify(h));
    return true;
  }

  /** The storage answers and the server takes new calls. */
  async health(): Promise<{ ok: boolean; status: string; storage: string; draining: boolean; uptime: number }> {
    const draining = this.s.control.draining;
    let storage = 'ok';
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer within 1 s')), HEALTH_DB_TIMEOUT_MS);
      });
      await Promise.race([sql`select 1`.execute(this.s.storage.db), timeout]);
    } catch (e) {
      storage = String((e as Error)?.message ?? e).slice(0, 200);
    } finally {
      clearTimeout(timer);
    }
    const ok = storage === 'ok' && !draining;
    const status = ok ? 'ok' : draining ? 'draining' : 'storage unavailable';
    return { ok, status, storage, draining, uptime: Math.round((Date.now() - this.s.startedAt) / 1000) };
  }
}
