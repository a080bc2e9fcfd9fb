/**
 * bench/sms: SMS submits/s to a loopback SMSC (the `smpp` package's server side) through one bind with a window of
 * 10 (target >= 1,000/s), the queue and the ledger audited after (every message charged once, submitted once);
 * then the durability run: a server child process (`bin/voxswitch.js serve`) is killed with SIGKILL while it
 * submits 10,000 queued messages, started again, and every message is counted on the SMSC side.
 * Usage: node <build>/bench/sms/run.js [messages] (default 10000)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../src/server.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { TestSmsc } from '../../test/helpers/smsc.js';

const N = Number(process.argv[2] ?? 10_000);
const BIN = fileURLToPath(new URL('../../../bin/voxswitch.js', import.meta.url));
const BASE = {
  mainaport: '0',
  apibindaddr: '127.0.0.1',
  usesip: 'false',
  defaultcountrycode: '1',
  nodeid: 'smsbench',
  smsretrydelay: '200',
  smsmaxattempts: '1000',
  loglevel: 'warn',
};
const CSV = 'prefix,destination,price,connectfee,minduration,increment,currency\n1,USA,0.01,0.002,60,60,USD\n';

async function until(what: string, f: () => Promise<boolean> | boolean, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const dest = (i: number) => `1555${String(i).padStart(7, '0')}`;

/** A data dir with a payer, the tariff, the gateway (to `port`) and `n` accepted messages (the SMSC not there). */
async function prepare(dir: string, port: number, n: number): Promise<{ srv: RunningServer; userId: number }> {
  process.env.VOXSWITCH_ADMIN_PASSWORD = 'bench-Admin-pw1';
  const srv = await startServer({
    dataDir: dir,
    overrides: BASE,
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const s = srv.services;
  const u = await s.users.create({ username: 'payer', password: 'payerpw1', currency: 'USD' });
  await s.money.addCredit(u.id, 1_000_000 * 1_000_000, u.id);
  await importTariffsCsv(s.storage.db, CSV);
  await s.rating.load();
  await s.sms.addGateway({
    name: 'bench',
    host: '127.0.0.1',
    port,
    systemId: 'vox',
    password: 'secret',
    systemType: '',
    bindMode: 'transceiver',
    prefixes: [],
    priority: 10,
    defaultSender: 'Bench',
    allowedSenders: [],
    throughput: 0,
    window: 10,
    tls: false,
    maxParts: 0,
    enabled: true,
  });
  for (let i = 0; i < n; i++)
    await s.sms.send({
      user: u,
      sender: '',
      destination: dest(i),
      text: `bench ${i}`,
      encoding: 'gsm7',
      operator: false,
    });
  return { srv, userId: u.id };
}

async function audit(srv: RunningServer, smsc: TestSmsc, userId: number, n: number) {
  const db = srv.services.storage.db;
  const states = await db
    .selectFrom('tb_sms')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute();
  const charges = await db
    .selectFrom('tb_ledger')
    .select(['ref', (eb) => eb.fn.countAll<number>().as('n')])
    .where('userid', '=', userId)
    .where('reason', '=', 'sms')
    .groupBy('ref')
    .execute();
  const unconfirmed = await db
    .selectFrom('tb_smsparts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'unconfirmed')
    .executeTakeFirst();
  const seen = new Map<string, number>();
  for (const s of smsc.submits) seen.set(s.destination, (seen.get(s.destination) ?? 0) + 1);
  let once = 0;
  let twice = 0;
  let never = 0;
  for (let i = 0; i < n; i++) {
    const c = seen.get(dest(i)) ?? 0;
    if (c === 1) once++;
    else if (c === 0) never++;
    else twice++;
  }
  const mismatch = await srv.services.ledger.audit();
  return {
    states: Object.fromEntries(states.map((s) => [s.state, Number(s.n)])),
    chargedMessages: charges.length,
    chargedTwice: charges.filter((c) => Number(c.n) !== 1).length,
    submittedOnce: once,
    submittedMoreThanOnce: twice,
    neverSubmitted: never,
    unconfirmedParts: Number(unconfirmed?.n ?? 0),
    ledgerMismatches: mismatch.length,
  };
}

async function throughput(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vx-bench-sms-'));
  const smsc = await TestSmsc.start();
  const port = smsc.port;
  await smsc.close(); // the queue fills while no SMSC answers
  const t0 = Date.now();
  const { srv, userId } = await prepare(dir, port, N);
  const acceptMs = Date.now() - t0;
  const live = await TestSmsc.start({ port });
  await until('bound', () => srv.services.sms.link?.status('bench')?.state === 'bound', 60_000);
  const start = Date.now();
  await until('all submitted', () => live.submits.length >= N);
  const secs = (Date.now() - start) / 1000;
  await until('queue settled', async () => {
    const r = await srv.services.storage.db
      .selectFrom('tb_sms')
      .select('id')
      .where('state', 'in', ['accepted', 'submitting'])
      .executeTakeFirst();
    return !r;
  });
  const a = await audit(srv, live, userId, N);
  const peak = srv.services.sms.link?.status('bench')?.peakOutstanding;
  console.log(
    `throughput: ${N} messages accepted (queued + charged) in ${(acceptMs / 1000).toFixed(1)} s ` +
      `(${Math.round((N * 1000) / acceptMs)}/s, sequential, in process)`,
  );
  console.log(
    `throughput: ${N} submits in ${secs.toFixed(2)} s = ${Math.round(N / secs)} submits/s on one bind, window 10 ` +
      `(peak outstanding ${peak}, SMSC peak ${live.peakOutstanding}); target >= 1000/s`,
  );
  console.log('throughput audit:', JSON.stringify(a));
  await srv.stop();
  await live.close();
  rmSync(dir, { recursive: true, force: true });
}

function serveChild(dir: string): ChildProcess {
  const args = [BIN, 'serve', '--data-dir', dir, ...Object.entries(BASE).flatMap(([k, v]) => ['--set', `${k}=${v}`])];
  const c = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return c;
}

async function durability(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vx-bench-sms-kill-'));
  const probe = await TestSmsc.start();
  const port = probe.port;
  await probe.close();
  const { srv, userId } = await prepare(dir, port, N);
  await srv.stop();
  const smsc = await TestSmsc.start({ port, delayMs: 1 });
  const child = serveChild(dir);
  const killAt = Math.floor(N * 0.4);
  await until(`${killAt} submits`, () => smsc.submits.length >= killAt, 120_000);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const atKill = smsc.submits.length;
  smsc.drop();
  const again = serveChild(dir);
  await until('all settled', () => smsc.submits.length >= N - 20, 300_000);
  await new Promise((r) => setTimeout(r, 1500));
  again.kill('SIGTERM');
  await new Promise((r) => again.once('exit', r));
  // read the final queue with an in-process server on the same dir (its own start settles nothing more)
  const check = await startServer({
    dataDir: dir,
    overrides: { ...BASE, nodeid: 'smsbench-audit' },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  await check.services.sms.deleteGateway('bench'); // the audit must not submit anything itself
  const a = await audit(check, smsc, userId, N);
  console.log(
    `durability: SIGKILL after ${atKill} of ${N} submits, restarted; SMSC saw ${smsc.submits.length} submits`,
  );
  console.log('durability audit:', JSON.stringify(a));
  await check.stop();
  await smsc.close();
  rmSync(dir, { recursive: true, force: true });
}

await throughput();
await durability();
