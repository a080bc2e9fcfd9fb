/**
 * Group commit: small writes that arrive together (the at-most-once marks and acknowledgements of the parts in
 * the window) run in one transaction, so the queue's durability costs one commit per batch, not one per part.
 * Each caller's promise settles when its batch has committed (or failed: then every write of that batch fails).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../../storage/schema.js';

type Op = { fn: (trx: Transaction<Database>) => Promise<void>; resolve: () => void; reject: (e: unknown) => void };

export class GroupCommit {
  private ops: Op[] = [];
  private flushing = false;

  constructor(private readonly db: Kysely<Database>) {}

  run(fn: Op['fn']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.ops.push({ fn, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.ops.length) {
      const batch = this.ops;
      this.ops = [];
      try {
        await this.db.transaction().execute(async (trx) => {
          for (const op of batch) await op.fn(trx);
        });
        for (const op of batch) op.resolve();
      } catch (e) {
        for (const op of batch) op.reject(e);
      }
    }
    this.flushing = false;
  }
}
