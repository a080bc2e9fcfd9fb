/**
 * Offline instant messages (tb_imessages): kept until delivered, delivered exactly once. Two ways out:
 *  - SIP: `claim` takes the pending messages of a user for one delivery attempt (an in-process lease, so a second
 *    REGISTER or presence_set does not send them at the same time), `delivered(id)` marks one after the phone's 2xx
 *    (a conditional UPDATE … WHERE delivered_at IS NULL, so a row is marked once), `release` returns the rest.
 *  - API presence_set: `takeAll` marks and returns every pending message not leased, in one statement.
 * Which users have pending messages is kept in memory, so a REGISTER costs no query when there is nothing waiting.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';

export interface StoredIm {
  id: number;
  fromuser: string;
  touser: string;
  body: string;
  content_type: string;
  created_at: number;
}

export class OfflineIms {
  private pendingUsers = new Set<string>();
  private leased = new Set<number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number = Date.now,
    private readonly maxPerUser = 500,
  ) {}

  async load(): Promise<void> {
    const rows = await this.db
      .selectFrom('tb_imessages')
      .select('touser')
      .distinct()
      .where('delivered_at', 'is', null)
      .execute();
    this.pendingUsers = new Set(rows.map((r) => r.touser));
  }

  hasPending(username: string): boolean {
    return this.pendingUsers.has(username);
  }

  async store(fromuser: string, touser: string, body: string, contentType = 'text/plain'): Promise<number> {
    const n = await this.db
      .selectFrom('tb_imessages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('touser', '=', touser)
      .where('delivered_at', 'is', null)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= this.maxPerUser)
      throw new Error(`the offline message box of ${touser} is full (${this.maxPerUser} messages)`);
    const r = await this.db
      .insertInto('tb_imessages')
      .values({ fromuser, touser, body, content_type: contentType, created_at: this.now(), delivered_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    this.pendingUsers.add(touser);
    return Number(r.id);
  }

  /** Pending messages of a user not leased by another delivery; they are leased until `delivered`/`release`. */
  async claim(touser: string): Promise<StoredIm[]> {
    if (!this.pendingUsers.has(touser)) return [];
    const rows = await this.db
      .selectFrom('tb_imessages')
      .select(['id', 'fromuser', 'touser', 'body', 'content_type', 'created_at'])
      .where('touser', '=', touser)
      .where('delivered_at', 'is', null)
      .orderBy('id')
      .execute();
    if (!rows.length) this.pendingUsers.delete(touser);
    const out: StoredIm[] = [];
    for (const r of rows) {
      const id = Number(r.id);
      if (this.leased.has(id)) continue;
      this.leased.add(id);
      out.push({ ...r, id, created_at: Number(r.created_at) });
    }
    return out;
  }

  /** Marks one message delivered (after the phone's 2xx); false when it already was. Ends its lease. */
  async delivered(id: number): Promise<boolean> {
    try {
      const r = await this.db
        .updateTable('tb_imessages')
        .set({ delivered_at: this.now() })
        .where('id', '=', id)
        .where('delivered_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    } finally {
      this.leased.delete(id);
    }
  }

  /** Ends leases without delivery (the phone did not answer 2xx): the messages stay pending. */
  release(ids: number[]): void {
    for (const id of ids) this.leased.delete(id);
  }

  /** Marks delivered and returns every pending, unleased message of a user, oldest first (presence_set). */
  async takeAll(touser: string): Promise<StoredIm[]> {
    if (!this.pendingUsers.has(touser)) return [];
    const t = this.now();
    const taken = await this.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('tb_imessages')
        .select(['id', 'fromuser', 'touser', 'body', 'content_type', 'created_at'])
        .where('touser', '=', touser)
        .where('delivered_at', 'is', null)
        .orderBy('id')
        .execute();
      const out: StoredIm[] = [];
      for (const r of rows) {
        const id = Number(r.id);
        if (this.leased.has(id)) continue;
        // conditional per row: a row marked by someone else in between is not returned
        const u = await trx
          .updateTable('tb_imessages')
          .set({ delivered_at: t })
          .where('id', '=', id)
          .where('delivered_at', 'is', null)
          .executeTakeFirst();
        if (Number(u.numUpdatedRows) === 1) out.push({ ...r, id, created_at: Number(r.created_at) });
      }
      return out;
    });
    const left = await this.db
      .selectFrom('tb_imessages')
      .select('id')
      .where('touser', '=', touser)
      .where('delivered_at', 'is', null)
      .executeTakeFirst();
    if (!left) this.pendingUsers.delete(touser);
    return taken;
  }

  async pendingCount(touser: string): Promise<number> {
    const n = await this.db
      .selectFrom('tb_imessages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('touser', '=', touser)
      .where('delivered_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(n.n);
  }
}
