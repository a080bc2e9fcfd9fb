/**
 * The money audit of a run on one PostgreSQL database: every account's credit equals the sum of its ledger, no call
 * charged twice (one CDR per call and leg, one ledger debit per CDR, the CDR costs of an account equal its call
 * debits), no reservation and no live call row left. Used by the several-nodes tests and bench/nodes.
 */
import pg from 'pg';

export interface Audit {
  accounts: number;
  cdrs: number;
  /** accounts whose credit differs from their ledger */
  balanceMismatches: string[];
  /** (callid, leg) with more than one CDR */
  duplicateCdrs: number;
  /** CDRs debited more than once in the ledger */
  doubleCharges: number;
  /** accounts whose CDR costs differ from their call debits */
  costMismatches: string[];
  reservationsLeft: number;
  liveRowsLeft: number;
  ok: boolean;
}

export async function audit(url: string): Promise<Audit> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows as Array<Record<string, unknown>>;
    const bal = await q(
      `SELECT u.username, u.credit::bigint AS credit, COALESCE(SUM(l.amount), 0)::bigint AS ledger
         FROM tb_users u LEFT JOIN tb_ledger l ON l.userid = u.id GROUP BY u.id, u.username, u.credit`,
    );
    const dup = await q(`SELECT callid, leg FROM tb_cdrs GROUP BY callid, leg HAVING COUNT(*) > 1`);
    const dbl = await q(
      `SELECT split_part(ref, ' ', 1) AS cdr FROM tb_ledger WHERE reason = 'call'
        GROUP BY split_part(ref, ' ', 1) HAVING COUNT(*) > 1`,
    );
    const cost = await q(
      `SELECT u.username,
              (SELECT COALESCE(SUM(cost), 0) FROM tb_cdrs WHERE userid = u.id)::bigint AS cdrs,
              (SELECT COALESCE(-SUM(amount), 0) FROM tb_ledger WHERE userid = u.id AND reason = 'call')::bigint AS debits
         FROM tb_users u`,
    );
    const n = async (sql: string) => Number((await q(sql))[0]!.n);
    const r: Audit = {
      accounts: bal.length,
      cdrs: await n(`SELECT COUNT(*) AS n FROM tb_cdrs`),
      balanceMismatches: bal.filter((b) => Number(b.credit) !== Number(b.ledger)).map((b) => String(b.username)),
      duplicateCdrs: dup.length,
      doubleCharges: dbl.length,
      costMismatches: cost.filter((x) => Number(x.cdrs) !== Number(x.debits)).map((x) => String(x.username)),
      reservationsLeft: await n(`SELECT COUNT(*) AS n FROM tb_reservations`),
      liveRowsLeft: await n(`SELECT COUNT(*) AS n FROM tb_livecalls`),
      ok: false,
    };
    r.ok =
      !r.balanceMismatches.length &&
      !r.duplicateCdrs &&
      !r.doubleCharges &&
      !r.costMismatches.length &&
      !r.reservationsLeft &&
      !r.liveRowsLeft;
    return r;
  } finally {
    await c.end();
  }
}
