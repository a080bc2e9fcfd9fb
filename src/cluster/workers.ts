/** How many worker processes `voxswitch serve` runs, from --workers / the workers option, and why. */
import { ConfigError } from '../config/options.js';

export interface WorkerPlan {
  workers: number;
  /** Why the count is what it is (printed at start when the default decided it). */
  reason?: string;
}

/**
 * `requested` is --workers (or the workers option; 0 = automatic). Several processes share state only through
 * Redis (registrations, nonces, bans, limits live in each process otherwise) and money only through PostgreSQL
 * (the SQLite ledger keeps a balance cache per process, so one worker could spend what another just spent). SIP
 * messages find the worker that owns their dialog through the hand-off (src/sip/transport/handoff.ts), so
 * automatic is one worker per core when both are configured.
 */
export function planWorkers(requested: number, o: { redisurl: string; dburl: string }, cores: number): WorkerPlan {
  const pg = /^postgres(ql)?:\/\//.test(o.dburl);
  if (requested === 0) {
    const n = Math.max(1, cores);
    if (o.redisurl && pg) return { workers: n, reason: `workers: ${n} (automatic: one per core)` };
    const missing = [o.redisurl ? '' : 'redisurl', pg ? '' : 'dburl on PostgreSQL'].filter(Boolean).join(' and ');
    return {
      workers: 1,
      reason: `workers: 1 (automatic; one per core, here ${n}, needs ${missing}: state and money are shared there)`,
    };
  }
  if (requested > 1 && !o.redisurl)
    throw new ConfigError(
      `--workers ${requested} needs option "redisurl" (redis://host:port): registrations, nonces, bans and limits ` +
        'are shared between worker processes through Redis',
    );
  if (requested > 1 && !pg)
    throw new ConfigError(
      `--workers ${requested} needs option "dburl" on PostgreSQL (postgres://…): on SQLite each process caches ` +
        'balances, so several workers could spend the same credit',
    );
  return { workers: requested };
}
