/**
 * Calls through `voxswitch serve --workers 2` on PostgreSQL + Redis, sipp as the phones: every message of a dialog
 * reaches the worker that owns its Call-ID whichever worker read it from the shared UDP socket. 40 calls with digest
 * (INVITE, 180, 200, ACK, re-INVITE, BYE) and 10 cancelled while ringing complete without a failed sipp call, one
 * CDR each; a phone registered over TCP (one connection, held by one worker) is called by a UDP caller and calls set
 * up by both workers reach it and end with BYE; an envelope with a wrong token on a private port is ignored, and
 * logged once; after the worker that does not hold the TCP connection is killed and replaced, the phone is still
 * registered and calls set up by both workers (the replacement included) reach it again.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { toolPath } from '../helpers/tools.js';
import { runTool, startListening } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { udpAsk } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';
import { REDIS_URL } from '../state/redis.js';
import { clusterSkip, startCluster, registerUdp, TcpPhone, headerOf, holderOf, type Cluster } from './cluster.js';

const SCEN = resolve(process.cwd(), 'test/calls/scenarios');
const SIPP = toolPath('sipp');
// Redis, PostgreSQL or sipp missing: skipped with the reason (a failure under CI=true)
const skip = await clusterSkip();

const sippCommon = (dir: string, name: string) => [
  '-i',
  '127.0.0.1',
  '-nostdin',
  '-timeout',
  '60s',
  '-timeout_error',
  '-t',
  'u1',
  '-trace_err',
  '-error_file',
  join(dir, `${name}.err`),
];

/** A sipp UAS on `port` for `calls` calls of `scenario`. */
function sippUas(dir: string, scenario: string, port: number, calls: number) {
  return startListening(
    SIPP,
    (p) => ['-sf', join(SCEN, scenario), '-p', String(p), '-m', String(calls), ...sippCommon(dir, `uas-${p}`)],
    { cwd: dir, port, timeoutMs: 90_000 },
  );
}

/** A sipp UAC: `calls` calls of `scenario` from `user` to `callee`, 10 per second, at most 20 at once. */
function sippUac(c: Cluster, dir: string, scenario: string, user: string, pw: string, callee: string, calls: number) {
  const inf = join(dir, `${scenario}.csv`);
  const line = `${user};[authentication username=${user} password=${pw}];${callee}`;
  writeFileSync(inf, `SEQUENTIAL\n${line}\n`);
  return runTool(
    SIPP,
    [
      `127.0.0.1:${c.sipPort}`,
      '-sf',
      join(SCEN, scenario),
      '-inf',
      inf,
      '-m',
      String(calls),
      '-r',
      '10',
      '-l',
      '20',
      '-d',
      '300',
      ...sippCommon(dir, `uac-${scenario}`),
    ],
    dir,
    90_000,
  );
}

describe('calls through serve --workers 2', { skip, timeout: 240_000 }, () => {
  let c: Cluster;
  let dir: string;
  let db: pg.Client;
  const tag = randomBytes(3).toString('hex');
  const caller = `ca${tag}`;
  const callee = `cb${tag}`;
  const tcpUser = `ct${tag}`;

  before(async () => {
    const started = await startCluster(2, `${REDIS_URL}/8`);
    if ('skip' in started) throw new Error(started.skip);
    c = started;
    dir = mkdtempSync(join(tmpdir(), 'vx-cluster-calls-'));
    for (const [u, credit] of [
      [caller, '10'],
      [callee, '1'],
      [tcpUser, '1'],
    ] as const) {
      const r = await c.api('newuseri', { u_username: u, u_password: `${u}pw`, u_credit: credit });
      assert.equal(r.status, 'OK', r.text);
    }
    db = new pg.Client({ connectionString: c.pgUrl });
    await db.connect();
  });

  after(async () => {
    await db?.end();
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cdrs = async (user: string) =>
    (await db.query('SELECT callid, leg, reason, duration FROM tb_cdrs WHERE caller = $1', [user])).rows as Array<{
      callid: string;
      leg: string;
      reason: string;
      duration: number;
    }>;

  test('40 calls with digest, re-INVITE and BYE over UDP, then 10 cancelled while ringing: none fails', async () => {
    const credit = async () =>
      Number((await db.query('SELECT credit FROM tb_users WHERE username = $1', [caller])).rows[0].credit);
    const before = await credit();
    const port = await freePort();
    await registerUdp(c.sipPort, callee, `${callee}pw`, port);
    const uas = await sippUas(dir, 'uas_reinvite.xml', port, 40);
    const uac = await sippUac(c, dir, 'uac_reinvite.xml', caller, `${caller}pw`, callee, 40);
    const u = await uas.done;
    assert.equal(uac.code, 0, `sipp UAC: ${uac.out.slice(-3000)}\n${c.out().slice(-2000)}`);
    assert.equal(u.code, 0, `sipp UAS: ${u.out.slice(-2000)}`);
    assert.match(uac.out, /Successful call\s*\|\s*\d+\s*\|\s*40\b/);
    assert.match(uac.out, /Failed call\s*\|\s*\d+\s*\|\s*0\b/);

    // one CDR per call, all answered; nothing left reserved or live
    await eventually(async () => (await cdrs(caller)).length >= 40, '40 CDRs', 10_000);
    const rows = await cdrs(caller);
    assert.equal(rows.length, 40, JSON.stringify(rows.slice(0, 3)));
    assert.equal(new Set(rows.map((r) => r.callid)).size, 40);
    await eventually(
      async () => Number((await db.query('SELECT count(*) AS n FROM tb_reservations')).rows[0].n) === 0,
      'no reservation left',
      10_000,
    );
    const live = await db.query('SELECT count(*) AS n FROM tb_livecalls');
    assert.equal(Number(live.rows[0].n), 0);
    // calls between two users of the switch are free: the caller's credit is untouched, by any worker
    assert.equal(await credit(), before);

    const port2 = await freePort();
    await registerUdp(c.sipPort, callee, `${callee}pw`, port2);
    const ring = await sippUas(dir, 'uas_ring.xml', port2, 10);
    const cancel = await sippUac(c, dir, 'uac_cancel.xml', caller, `${caller}pw`, callee, 10);
    const r = await ring.done;
    assert.equal(cancel.code, 0, `sipp UAC (CANCEL): ${cancel.out.slice(-3000)}`);
    assert.equal(r.code, 0, `sipp UAS (ringing): ${r.out.slice(-2000)}`);
    await eventually(async () => (await cdrs(caller)).length >= 50, '10 more CDRs', 10_000);
    assert.equal((await cdrs(caller)).length, 50);
  });

  test('a phone on one TCP connection is reached by calls that either worker set up, and each ends with BYE', async () => {
    const phone = new TcpPhone();
    await phone.open(c.sipPort);
    try {
      await phone.register(tcpUser, `${tcpUser}pw`);
      const uac = await sippUac(c, dir, 'uac_auth.xml', caller, `${caller}pw`, tcpUser, 12);
      assert.equal(uac.code, 0, `sipp UAC: ${uac.out.slice(-3000)}\n${c.out().slice(-2000)}`);
      const invites = phone.received.filter((m) => m.startsWith('INVITE '));
      // the B2BUA answers the caller's BYE at once: the last BYE to the phone may arrive just after sipp ended
      const count = invites.length;
      await eventually(() => phone.received.filter((m) => m.startsWith('BYE ')).length >= count, 'the BYEs', 5000);
      const byes = phone.received.filter((m) => m.startsWith('BYE '));
      assert.equal(invites.length, 12);
      assert.equal(byes.length, 12);
      // the B leg's Call-ID names the worker that set the call up: both did, over the one connection one of them holds
      const makers = new Set(invites.map((m) => /^w(\d+)\./.exec(headerOf(m, 'Call-ID'))?.[1]));
      assert.deepEqual([...makers].sort(), ['1', '2'], [...makers].join());
      for (const inv of invites)
        assert.ok(
          byes.some((b) => headerOf(b, 'Call-ID') === headerOf(inv, 'Call-ID')),
          'a BYE for every call',
        );
    } finally {
      phone.close();
    }
  });

  test('an envelope with a wrong token on a private port is ignored, and logged once per worker', async () => {
    const sock = createSocket('udp4');
    try {
      const bad = Buffer.concat([Buffer.from('VXH1'), Buffer.from([1]), randomBytes(32), Buffer.from([0, 0])]);
      const sip = Buffer.from(
        'OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\nCall-ID: bad\r\n\r\n',
      );
      for (let i = 0; i < 3; i++) for (const p of c.handoffPorts) sock.send(Buffer.concat([bad, sip]), p, '127.0.0.1');
      const line = /SIP worker hand-off: envelope with a wrong token/g;
      await eventually(() => (c.out().match(line)?.length ?? 0) >= 2, 'logged by both workers', 5000);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(c.out().match(line)?.length, 2, 'once per worker, not once per envelope');
      // and counted: info on each worker (the API connections go to the workers in turn)
      const rejected = new Map<string, number>();
      await eventually(
        async () => {
          const f = (await c.api('info', {})).fields as Record<string, string | number>;
          rejected.set(String(f.pid), Number(f.sip_handoff_rejected));
          return rejected.size === 2;
        },
        'info from both workers',
        20_000,
      );
      assert.deepEqual([...rejected.values()], [3, 3]);
      // the cluster still answers
      const reg =
        'REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-after;rport\r\n' +
        `Max-Forwards: 70\r\nFrom: <sip:${caller}@127.0.0.1>;tag=a\r\nTo: <sip:${caller}@127.0.0.1>\r\n` +
        'Call-ID: after-bad@test\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n';
      assert.match(await udpAsk(c.sipPort, reg), /^SIP\/2\.0 401 /);
    } finally {
      sock.close();
    }
  });

  test('the worker not holding a TCP phone is killed: its replacement takes its share and the phone stays reachable', async () => {
    const phone = new TcpPhone();
    await phone.open(c.sipPort);
    try {
      await phone.register(tcpUser, `${tcpUser}pw`);
      const holder = holderOf(c.pids, phone.localPort, c.sipPort);
      assert.ok(holder, `a worker holds the connection (${c.pids.join()})`);
      const victim = c.pids.find((p) => p !== holder)!;
      const index = c.pids.indexOf(victim) + 1;
      const portLines = () => c.out().match(/SIP hand-off on 127\.0\.0\.1 ports/g)?.length ?? 0;
      const before = portLines();
      process.kill(Number(victim), 'SIGKILL');
      await eventually(() => c.out().includes(`worker ${index} (pid ${victim}) ended (SIGKILL)`), 'restart', 10_000);
      await eventually(() => portLines() > before, 'the replacement announced its port', 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      const mark = phone.received.length;
      const uac = await sippUac(c, dir, 'uac_auth.xml', caller, `${caller}pw`, tcpUser, 12);
      assert.equal(uac.code, 0, `sipp UAC: ${uac.out.slice(-3000)}\n${c.out().slice(-2000)}`);
      const invites = phone.received.slice(mark).filter((m) => m.startsWith('INVITE '));
      assert.equal(invites.length, 12);
      const makers = new Set(invites.map((m) => /^w(\d+)\./.exec(headerOf(m, 'Call-ID'))?.[1]));
      assert.deepEqual([...makers].sort(), ['1', '2'], [...makers].join());
    } finally {
      phone.close();
    }
  });
});
