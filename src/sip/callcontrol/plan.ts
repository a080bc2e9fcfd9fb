/**
 * Routing one leg of a bridged call for the paying user: a registered user → its registered contacts (highest q,
 * then most recent registration first), sent to the address the REGISTER came from; a number → the gateways in
 * failover order with their credentials.
 */
import { escapeUser, sipUri, uriHostPart } from '../message/index.js';
import type { SipTransport } from '../stack.js';
import type { User } from '../../domain/accounts/users.js';
import type { LiveCalls } from '../../domain/calls/index.js';
import type { DomainServices } from '../../domain/deps.js';
import type { GatewayCandidate } from '../../domain/routing/types.js';
import type { SipHop } from '../trunks/resolve.js';
import { CallControlError, type LegPlan, type LegTarget, type RouterLike, type SipServerLike } from './types.js';

export class LegPlanner {
  constructor(
    private readonly services: DomainServices,
    private readonly sip: SipServerLike,
    private readonly routing: RouterLike,
    private readonly live: LiveCalls,
    private readonly domainOption?: string,
  ) {}

  /** Routes one leg for the paying user. Throws CallControlError with the refusal. */
  async planLeg(user: User, dialled: string, callerLabel: string): Promise<LegPlan> {
    const d = await this.routing.route({
      caller: callerLabel,
      called: dialled,
      fromIp: '',
      user,
      reservedCredit: this.live.reservedFor(user.id),
    });
    if (d.kind === 'reject') throw new CallControlError(`${dialled}: ${d.reason} (${d.status})`, d.status);
    if (d.kind === 'user') {
      const bs = [...this.sip.location.lookup(d.user.username)];
      if (!bs.length)
        throw new CallControlError(`${dialled}: user ${d.user.username} has no registered phone (480)`, 480);
      bs.sort((x, y) => y.q - x.q || y.registeredAt - x.registeredAt);
      const domain = this.domainFor(bs[0]!.transport);
      return {
        dialled,
        callee: d.user.username,
        route: `user:${d.user.username}`,
        username: d.user.username,
        targets: bs.map((b) => ({
          ruri: b.contact,
          target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
          to: `sip:${escapeUser(d.user.username)}@${domain}`,
          name: d.user.username,
        })),
      };
    }
    if (!d.candidates.length) throw new CallControlError(`${dialled}: no gateway for ${d.number} (503)`, 503);
    const targets = (await Promise.all(d.candidates.map((c) => this.gatewayTargets(c)))).flat();
    if (!targets.length) {
      throw new CallControlError(`${dialled}: no gateway host for ${d.number} could be resolved (503)`, 503);
    }
    return {
      dialled,
      callee: d.number,
      route: `gw:${d.candidates.map((c) => c.name).join(',')}`.slice(0, 128),
      rate: d.rate,
      targets,
    };
  }

  /**
   * One gateway's targets: one per RFC 3263 hop of its host (SRV targets in order, each address), tried in turn as
   * the B2BUA does (src/sip/calls/failover.ts); a name resolved by SRV/NAPTR keeps the name, no port, in the
   * Request-URI. A host that does not resolve gives none (logged; the next gateway is tried).
   */
  private async gatewayTargets(c: GatewayCandidate): Promise<LegTarget[]> {
    let hops: SipHop[] = [{ transport: c.transport, host: c.host, port: c.port, name: c.host }];
    if (this.sip.resolver) {
      try {
        hops = await this.sip.resolver.resolve(c.host, c.port, c.transport, c.dns ?? '');
      } catch (e) {
        this.services.log.warn(
          { gateway: c.name, host: c.host, err: (e as Error).message },
          'gateway host not resolved',
        );
        return [];
      }
    }
    return hops.map((hop) => ({
      ruri: sipUri(c.number, c.host, c.dns ? undefined : c.port, hop.transport),
      target: { transport: hop.transport as SipTransport, host: hop.host, port: hop.port },
      to: sipUri(c.number, c.host),
      name: c.name,
      auth: c.username ? { username: c.username, password: c.password } : undefined,
    }));
  }

  /** Our domain in From/To: the domain option, else sipdomain, else the local address. */
  domainFor(t: SipTransport): string {
    if (this.domainOption) return this.domainOption;
    const o = this.services.config.options as { sipdomain?: string };
    if (o.sipdomain) return o.sipdomain;
    const l = this.sip.stack.localAddress(t);
    return l ? uriHostPart(l.host) : '127.0.0.1';
  }
}
