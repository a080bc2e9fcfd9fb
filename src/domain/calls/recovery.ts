/**
 * Recovery of live calls nobody owns any more: the rows a crashed run of this node left in tb_livecalls, and the
 * rows of another node that stopped refreshing them (a dead node). Each is billed once from connect_at ..
 * updated_at (capped at maxduration; unanswered → cost 0) through CdrService.recordCall, which releases the call's
 * credit reservation in the same transaction and dedups on (callid, leg), so a node that comes back, or a second
 * survivor, charges nothing twice. A node whose announcement is still live (state.nodes) is not dead, however old
 * its rows: it may have lost only the database. Then reservations no live call stands behind are released.
 */
import type { DomainServices } from '../deps.js';
import type { Rate } from '../rating/rate.js';
import type { Reservations } from '../billing/reservations.js';

export interface RecoveryScope {
  /** this node's name */
  node: string;
  /** rows refreshed before this instant (ms) belong to a dead node */
  stale: number;
  now: number;
  /** only other nodes' stale rows (a survivor's periodic sweep), not this node's own leftovers */
  deadOnly: boolean;
  /** true for a row key (callid or callid/leg) live in this process */
  live: (key: string) => boolean;
  /**
   * Processes that still announce themselves (state.nodes): their rows are not billed however stale they are — a
   * node that lost the database but not the shared state still holds its calls and bills them when it is back.
   */
  alive?: ReadonlySet<string>;
}

const keyOf = (callid: string, leg: string) => (leg ? `${callid}/${leg}` : callid);

function parseRate(json: string): Rate | undefined {
  try {
    const j = JSON.parse(json || '{}');
    return j && typeof j.price === 'number' ? (j as Rate) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The other processes that still announce themselves (with `redisurl`; undefined in one process, where no other
 * announces), or null when the shared state does not answer.
 */
export async function aliveNodes(services: DomainServices, self: string): Promise<Set<string> | undefined | null> {
  if (services.state.kind !== 'redis') return undefined;
  const nodes = await services.state.nodes.list().catch(() => null);
  return nodes && new Set(nodes.filter((n) => n.id !== self).map((n) => n.id));
}

export async function recoverLeftovers(
  services: DomainServices,
  reservations: Reservations,
  s: RecoveryScope,
): Promise<{ closed: number; charged: number }> {
  const db = services.storage.db;
  const rows = await db
    .selectFrom('tb_livecalls')
    .selectAll()
    .where((w) =>
      s.deadOnly
        ? w.and([w('node', '<>', s.node), w('updated_at', '<', s.stale)])
        : w.or([w('node', '=', s.node), w('updated_at', '<', s.stale)]),
    )
    .execute();
  let closed = 0;
  let charged = 0;
  for (const r of rows) {
    if (s.live(r.callid)) continue;
    if (r.node !== s.node && s.alive?.has(r.node)) continue;
    const leg = r.leg ?? '';
    const callid = leg && r.callid.endsWith('/' + leg) ? r.callid.slice(0, -leg.length - 1) : r.callid;
    const connectAt = r.connect_at === null ? null : Number(r.connect_at);
    const updated = Number(r.updated_at);
    const duration =
      connectAt === null ? 0 : Math.min(Number(r.maxduration), Math.max(0, Math.floor((updated - connectAt) / 1000)));
    try {
      const rec = await services.cdrs.recordCall({
        callid,
        leg,
        userId: Number(r.userid),
        caller: r.caller,
        callee: r.callee,
        route: r.route,
        startAt: Number(r.start_at),
        connectAt,
        endAt: Math.max(updated, Number(r.start_at)),
        duration,
        reason: r.node === s.node ? 'recovered after restart' : `recovered from dead node ${r.node}`.slice(0, 128),
        rate: parseRate(r.rate_json),
      });
      charged += rec.charged;
      await db.deleteFrom('tb_livecalls').where('callid', '=', r.callid).execute();
      closed++;
    } catch (e) {
      services.log.error({ err: String(e), callid: r.callid }, 'live call recovery failed; row kept');
    }
  }
  if (closed) services.log.warn({ closed, charged }, 'live calls left by a previous run or a dead node billed');
  const freed = await reservations.sweep(s.deadOnly ? null : s.node, s.now, (c, l) => s.live(keyOf(c, l)));
  if (freed) services.log.warn({ freed }, 'credit reservations without a live call released');
  return { closed, charged };
}
