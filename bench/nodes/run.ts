/**
 * Two nodes as one switch: two `voxswitch serve` processes on one PostgreSQL database (a fresh one) and one Redis
 * (a key prefix of this run). 1,000 phones register on node A (sipp UAC, REGISTER with digest, from the port the
 * sipp UAS then answers on), then 1,000 calls are placed through node B to them (sipp UAC with digest, 1 s of talk,
 * BYE); every call must complete. Then the audit: every account's balance equals its ledger, one CDR per call, no
 * charge twice, no reservation and no live call row left.
 *
 *   npm run bench:nodes [-- --phones 1000 --calls 1000 --callers 100 --reg-rate 250 --call-rate 100 --hold-ms 1000]
 *
 * Prints the registration rate, the call rate, completed/failed calls, the shared view of the nodes (state.nodes)
 * and the audit. Needs PostgreSQL (127.0.0.1:5432, VOXSWITCH_TEST_PG), Redis (VOXSWITCH_TEST_REDIS) and sipp.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import pgClient from 'pg';
import { startServer } from '../../src/server.js';
import { openState } from '../../src/state/index.js';
import { freshPgDatabase } from '../../test/helpers/pg.js';
import { freePort } from '../../test/helpers/ports.js';
import { startListening } from '../../test/helpers/processes.js';
import { REDIS_URL, testPrefix, dropPrefix, redisMissing } from '../../test/state/redis.js';
import { serve, type Served } from '../../test/nodes/serve.js';
import { audit } from '../../test/nodes/audit.js';

const SIPP = '/usr/bin/sipp';
const REGISTER = resolve(process.cwd(), 'test/sip/scenarios/register_auth.xml');
const UAC = resolve(process.cwd(), 'test/calls/scenarios/uac_auth.xml');
const UAS = resolve(process.cwd(), 'test/calls/scenarios/uas_answer.xml');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const PHONES = arg('phones', 1000);
const CALLS = arg('calls', 1000);
const CALLERS = arg('callers', 100);
const REG_RATE = arg('reg-rate', 250);
const CALL_RATE = arg('call-rate', 100);
const HOLD_MS = arg('hold-ms', 1000);
const UNIT = 1_000_000;

interface SippRun {
  ok: number;
  failed: number;
  retrans: number;
  seconds: number;
  code: number | null;
}

/** One sipp UAC run to completion, its counts from the statistics file. */
function sipp(args: string[], dir: string, tag: string): Promise<SippRun> {
  const stat = join(dir, `${tag}.stat.csv`);
  const all = [...args, '-i', '127.0.0.1', '-t', 'u1', '-nostdin', '-trace_stat', '-stf', stat, '-fd', '1'];
  if (process.argv.includes('--trace-err')) all.push('-trace_err', '-error_file', join(dir, `${tag}.err.log`));
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(SIPP, all, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (!existsSync(stat)) return rej(new Error(`sipp wrote no statistics: ${err.slice(-500)}`));
      const rows = readFileSync(stat, 'utf8').trim().split('\n');
      const head = rows[0]!.split(';');
      const last = rows.at(-1)!.split(';');
      const n = (k: string) => Number(last[head.indexOf(k)] ?? 0) || 0;
      res({ ok: n('SuccessfulCall(C)'), failed: n('FailedCall(C)'), retrans: n('Retransmissions(C)'), seconds, code });
    });
  });
}

async function main(): Promise<void> {
  if (!existsSync(SIPP)) throw new Error(`sipp not found at ${SIPP}`);
  const why = await redisMissing();
  if (why) throw new Error(why);
  const pg = await freshPgDatabase();
  if ('skip' in pg) throw new Error(pg.skip);
  const prefix = testPrefix().replace(/^vxtest:/, 'vxbench:');
  const dirA = mkdtempSync(join(tmpdir(), 'voxswitch-bench-nodea-'));
  const dirB = mkdtempSync(join(tmpdir(), 'voxswitch-bench-nodeb-'));
  const work = mkdtempSync(join(tmpdir(), 'voxswitch-bench-nodes-'));
  let a: Served | undefined;
  let b: Served | undefined;
  let uas: { stop(): void; done: Promise<unknown> } | undefined;
  const state = await openState({ redisUrl: REDIS_URL, prefix, nodeId: 'bench' });
  try {
    // accounts: phones p0.. (callees) and callers c0.. with credit, created once on the shared database
    const t0 = Date.now();
    const prep = await startServer({
      dataDir: dirA,
      overrides: { dburl: pg.url, usesip: 'false', usemainaport: 'false' },
      announce: () => undefined,
      logger: pino({ level: 'silent' }),
    });
    try {
      const s = prep.services;
      for (let i = 0; i < PHONES; i++) await s.users.create({ username: `p${i}`, password: `pw-p${i}` });
      for (let i = 0; i < CALLERS; i++) {
        const u = await s.users.create({ username: `c${i}`, password: `pw-c${i}` });
        await s.ledger.post({ userId: u.id, amount: 10 * UNIT, reason: 'bench' });
      }
    } finally {
      await prep.stop();
    }
    process.stdout.write(
      `accounts: ${PHONES} phones, ${CALLERS} callers in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    copyFileSync(join(dirA, 'server.key'), join(dirB, 'server.key'));
    const sets = { dburl: pg.url, redisurl: REDIS_URL, authfailban: '0', sipmaxexpires: '3600' };
    a = await serve(dirA, { ...sets, nodeid: 'node-a' }, prefix);
    b = await serve(dirB, { ...sets, nodeid: 'node-b' }, prefix);
    process.stdout.write(`nodes: node-a pid ${a.pid} sip udp ${a.port}, node-b pid ${b.pid} sip udp ${b.port}\n`);

    // 1. the phones register on A from the port the UAS answers on afterwards
    const phonePort = await freePort();
    const regCsv = join(work, 'phones.csv');
    const lines = ['SEQUENTIAL'];
    for (let i = 0; i < PHONES; i++) lines.push(`p${i};[authentication username=p${i} password=pw-p${i}]`);
    writeFileSync(regCsv, lines.join('\n') + '\n');
    const reg = await sipp(
      [`127.0.0.1:${a.port}`, '-sf', REGISTER, '-inf', regCsv, '-m', String(PHONES), '-r', String(REG_RATE)].concat([
        '-l',
        String(REG_RATE * 4),
        '-p',
        String(phonePort),
        '-timeout',
        '120s',
        '-timeout_error',
      ]),
      work,
      'register',
    );
    const bindings = (await state.hash('location').keys()).length;
    process.stdout.write(
      `registration: ${reg.ok}/${PHONES} ok, ${reg.failed} failed, ${reg.retrans} retransmissions, ` +
        `${(reg.ok / reg.seconds).toFixed(0)}/s (offered ${REG_RATE}/s, ${reg.seconds.toFixed(2)} s); ` +
        `users with bindings in the shared state: ${bindings}\n`,
    );

    // 2. the phones answer (one sipp UAS on their port); the calls go through B
    uas = await startListening(
      SIPP,
      (port) => ['-sf', UAS, '-i', '127.0.0.1', '-p', String(port), '-m', String(CALLS), '-nostdin', '-t', 'u1'],
      { cwd: work, port: phonePort, timeoutMs: 30 * 60_000 },
    );
    const callCsv = join(work, 'calls.csv');
    const calls = ['SEQUENTIAL'];
    for (let i = 0; i < CALLS; i++) {
      const c = `c${i % CALLERS}`;
      calls.push(`${c};[authentication username=${c} password=pw-${c}];p${i % PHONES}`);
    }
    writeFileSync(callCsv, calls.join('\n') + '\n');
    const call = await sipp(
      [`127.0.0.1:${b.port}`, '-sf', UAC, '-inf', callCsv, '-m', String(CALLS), '-r', String(CALL_RATE)].concat([
        '-l',
        String(CALL_RATE * 4),
        '-d',
        String(HOLD_MS),
        '-p',
        '0',
        '-timeout',
        '300s',
        '-timeout_error',
      ]),
      work,
      'calls',
    );
    process.stdout.write(
      `calls through node-b: ${call.ok}/${CALLS} completed, ${call.failed} failed, ${call.retrans} retransmissions, ` +
        `${(call.ok / call.seconds).toFixed(1)} calls/s (offered ${CALL_RATE}/s, ${HOLD_MS} ms talk, ` +
        `${call.seconds.toFixed(2)} s)\n`,
    );

    // 3. the shared view of the nodes (their last announcement) and the audit
    await new Promise((r) => setTimeout(r, 5500));
    for (const n of await state.nodes.list())
      process.stdout.write(
        `  ${n.id} (announced ${((Date.now() - n.at) / 1000).toFixed(1)} s ago): pid ${n.pid}, registrations ${n.registrations}, live calls ${n.liveCalls}, ` +
          `attempted ${n.callsAttempted}, API requests ${n.apiRequests}, overload refusals ${n.overloadRefused}\n`,
      );
    let r = await audit(pg.url);
    for (let i = 0; i < 50 && r.liveRowsLeft; i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await audit(pg.url);
    }
    const oneCdrPerCall = r.cdrs === CALLS;
    const c = new pgClient.Client({ connectionString: pg.url });
    await c.connect();
    const reasons = (await c.query(`SELECT reason, COUNT(*)::int AS n FROM tb_cdrs GROUP BY reason ORDER BY 2 DESC`))
      .rows;
    await c.end();
    process.stdout.write(`CDR reasons: ${reasons.map((x) => `${x.reason} ${x.n}`).join(', ')}\n`);
    process.stdout.write(
      `audit: ${r.accounts} accounts, ${r.cdrs} CDRs for ${CALLS} calls (${oneCdrPerCall ? 'one each' : 'MISMATCH'}), ` +
        `balance≠ledger: ${r.balanceMismatches.length}, duplicate CDRs: ${r.duplicateCdrs}, ` +
        `double charges: ${r.doubleCharges}, CDR cost≠debits: ${r.costMismatches.length}, ` +
        `reservations left: ${r.reservationsLeft}, live rows left: ${r.liveRowsLeft} → ` +
        `${r.ok && oneCdrPerCall && call.ok === CALLS && reg.ok === PHONES ? 'PASS' : 'FAIL'}\n`,
    );
    if (!(r.ok && oneCdrPerCall && call.ok === CALLS && reg.ok === PHONES)) process.exitCode = 1;
  } finally {
    if (process.argv.includes('--trace-err')) process.stdout.write(`sipp error logs kept in ${work}\n`);
    uas?.stop();
    await a?.stop();
    await b?.stop();
    await state.close();
    await dropPrefix(prefix);
    await pg.drop();
    const keep = process.argv.includes('--trace-err') ? [] : [work];
    for (const d of [dirA, dirB, ...keep]) rmSync(d, { recursive: true, force: true });
  }
}

await main();
