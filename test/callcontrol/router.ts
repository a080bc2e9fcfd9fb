/** The test router of the call-control tests: each dialled number goes to the sipp peers listed for it. */
import type { RouterLike } from '../../src/sip/callcontrol/controller.js';
import type { RouteDecision, RouteRequest } from '../../src/domain/routing/service.js';
import type { Services } from '../../src/services.js';

/** Sends each dialled number to the sipp peers listed for it, rated by the real RatingService. */
export class TestRouter implements RouterLike {
  constructor(private readonly services: () => Services) {}

  readonly routes = new Map<string, Array<{ name: string; port: number; username?: string; password?: string }>>();
  async route(r: RouteRequest): Promise<RouteDecision> {
    const gws = this.routes.get(r.called);
    const user = gws ? undefined : await this.services().users.byUsername(r.called);
    if (user) return { kind: 'user', user, number: user.username };
    if (!gws) return { kind: 'reject', status: 404, reason: `no route to ${r.called}` };
    const q = await this.services().rating.quote({ id: r.user!.id, country: r.user!.country }, r.called);
    return {
      kind: 'gateways',
      number: q.number,
      rate: q.rate,
      quote: q,
      candidates: gws.map((g, i) => ({
        id: i + 1,
        name: g.name,
        host: '127.0.0.1',
        port: g.port,
        transport: 'udp' as const,
        username: g.username ?? '',
        password: g.password ?? '',
        number: q.number,
      })),
    };
  }
}
