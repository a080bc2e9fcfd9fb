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
 * (the SQLite ledger keeps a balance cache per process, so one worker could spend what another just spent).
 */
export function planWorkers(requested: number, o: { redisurl: string; dburl: string }, cores: number): WorkerPlan {
  const pg = /^postgres(ql)?:\/\//.test(o.dburl);
  // Automatic is one process: over UDP every worker reads the one shared socket, and a request inside a dialog
  // (ACK, BYE, re-INVITE) may reach a worker that does not hold that dialog. Until dialogs are routed to their
  // worker, several workers are an explicit choice.
  if (requested === 0)
    return {
      workers: 1,
      reason: `workers: 1 (automatic; --workers N with redisurl and PostgreSQL runs up to ${Math.max(1, cores)})`,
    };
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
  if (requested > 1)
    return {
      workers: requested,
      reason:
        `workers: ${requested} (SIP dialogs over UDP are not yet routed to the worker that holds them: an ACK, BYE ` +
        'or re-INVITE reaching another worker is answered 481; run one worker for calls over UDP)',
    };
  return { workers: requested };
}
