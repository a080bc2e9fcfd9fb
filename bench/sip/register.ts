/**
 * Registrar benchmark: REGISTER with digest authentication per second, driven by sipp over UDP.
 *
 *   node .build-X/bench/sip/register.js [--users 2000] [--rounds 2] [--rate 5000] [--limit 200] [--with-kamailio]
 *
 * Starts a voxswitch server (temp data dir, SQLite) with SIP on a random UDP port, creates N users, runs sipp with
 * test/sip/scenarios/register_auth.xml (REGISTER → 401 → REGISTER with Authorization → 200) and an injection file
 * (`user;[authentication username=.. password=..]`), `rounds` registrations per user, and prints registrations/s and
 * failures. Then measures memory per 10,000 bindings in-process (process.memoryUsage around 10,000
 * LocationStore registrations). With --with-kamailio, installs kamailio (apt-get) when missing and runs the same
 * sipp scenario against a minimal kamailio registrar (auth_db on db_text) written to a temp dir.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { LocationStore } from '../../src/sip/services/location.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const USERS = arg('users', 2000);
const ROUNDS = arg('rounds', 2);
const RATE = arg('rate', 5000);
const LIMIT = arg('limit', 200);
const WITH_KAMAILIO = process.argv.includes('--with-kamailio');
const SCENARIO = resolve(process.cwd(), 'test/sip/scenarios/register_auth.xml');
const SIPP = '/usr/bin/sipp';

interface SippResult {
  ok: number;
  failed: number;
  seconds: number;
  code: number | null;
  tail: string;
}

function runSipp(port: number, csv: string, calls: number, dir: string): Promise<SippResult> {
  return new Promise((res) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(
      SIPP,
      [
        `127.0.0.1:${port}`,
        '-sf',
        SCENARIO,
        '-inf',
        csv,
        '-m',
        String(calls),
        '-r',
        String(RATE),
        '-l',
        String(LIMIT),
        '-i',
        '127.0.0.1',
        '-t',
        'u1',
        '-nostdin',
        '-timeout',
        '300s',
        '-trace_err',
        '-error_file',
        join(dir, 'sipp.err'),
      ],
      { cwd: dir },
    );
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const num = (label: string) => {
        const lines = out.split('\n').filter((l) => l.includes(label));
        const last = lines.at(-1) ?? '';
        const cells = last.split('|').map((s) => s.trim());
        return Number(cells[2] ?? cells[1] ?? 0) || 0;
      };
      const errFile = join(dir, 'sipp.err');
      const errors = existsSync(errFile)
        ? readFileSync(errFile, 'utf8')
            .split('\n')
            .filter((l) => /Aborting|unexpected|timeout/i.test(l))
        : [];
      const tail = errors.length
        ? `first sipp errors:\n${errors
            .slice(0, 3)
            .map((l) => l.slice(0, 300))
            .join('\n')}`
        : out.slice(-1500);
      res({ ok: num('Successful call'), failed: num('Failed call'), seconds, code, tail });
    });
  });
}

function writeCsv(dir: string, users: Array<[string, string]>, rounds: number): string {
  const f = join(dir, 'users.csv');
  const lines = ['SEQUENTIAL'];
  for (let r = 0; r < rounds; r++)
    for (const [u, p] of users) lines.push(`${u};[authentication username=${u} password=${p}]`);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  const g = runInNewContext('gc') as () => void;
  g();
  g();
}

function memoryPer10k(): { heapMB: number; rssMB: number; perBindingBytes: number } {
  const loc = new LocationStore();
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < 10_000; i++) {
    const u = `user${String(i).padStart(6, '0')}`;
    loc.update(u, `${i}-a8f3c2d1e0b9@10.0.${i >> 8}.${i & 255}`, 1, [
      {
        contact: `sip:${u}@10.0.${i >> 8}.${i & 255}:5060;transport=udp;ob`,
        expires: 3600,
        transport: 'udp',
        srcIp: `10.0.${i >> 8}.${i & 255}`,
        srcPort: 5060 + (i % 1000),
        userAgent: 'Yealink SIP-T46S 66.86.0.15',
        q: 1,
      },
    ]);
  }
  gc();
  const after = process.memoryUsage();
  if (loc.size().bindings !== 10_000) throw new Error('bindings not stored');
  const heap = after.heapUsed - before.heapUsed;
  return {
    heapMB: heap / 1048576,
    rssMB: (after.rss - before.rss) / 1048576,
    perBindingBytes: Math.round(heap / 10_000),
  };
}

async function benchVoxswitch(dir: string, users: Array<[string, string]>): Promise<SippResult> {
  const srv = await startServer({
    dataDir: join(dir, 'data'),
    overrides: { mainaport: '0', apibindaddr: '127.0.0.1', authfailban: '0', sipmaxexpires: '3600' },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const o = srv.services.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: -1,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
    isBanned: (ip) => srv.services.bans.isBanned(ip),
  });
  const sip = new SipServer(srv.services, stack);
  const l = await sip.start();
  const port = l.find((x) => x.transport === 'udp')!.port;
  const t0 = Date.now();
  for (const [u, p] of users) await srv.services.users.create({ username: u, password: p });
  console.log(
    `created ${users.length} users in ${((Date.now() - t0) / 1000).toFixed(1)} s; voxswitch SIP on udp 127.0.0.1:${port}`,
  );
  const r = await runSipp(port, writeCsv(dir, users, ROUNDS), users.length * ROUNDS, dir);
  console.log(`bindings held: ${sip.location.size().bindings} for ${sip.location.size().users} users`);
  await sip.stop();
  await srv.stop();
  return r;
}

function kamailioConfig(dir: string, port: number): string {
  const db = join(dir, 'kdb');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'version'), 'table_name(str) table_version(int)\nsubscriber:7\nlocation:9\n');
  return `#!KAMAILIO
debug=0
log_stderror=yes
memdbg=5
memlog=5
fork=yes
children=4
auto_aliases=no
listen=udp:127.0.0.1:${port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "db_text.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("usrloc", "db_mode", 0)
modparam("auth_db", "db_url", "text://${db}")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "")
modparam("auth", "nonce_count", 1)
modparam("auth", "qop", "auth")
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("REGISTER")) {
    if (!auth_check("$fd", "subscriber", "1")) { auth_challenge("$fd", "1"); exit; }
    if (!save("location")) sl_reply_error();
    exit;
  }
  sl_send_reply("405", "Method Not Allowed");
}
`;
}

async function benchKamailio(dir: string, users: Array<[string, string]>): Promise<SippResult | string> {
  if (!existsSync('/usr/sbin/kamailio')) {
    console.log('installing kamailio (apt-get install -y kamailio) ...');
    const r = spawnSync('apt-get', ['install', '-y', '-q', 'kamailio'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0 || !existsSync('/usr/sbin/kamailio')) return 'kamailio could not be installed';
  }
  const kdir = join(dir, 'kamailio');
  mkdirSync(kdir, { recursive: true });
  const port = 30000 + Math.floor(Math.random() * 20000);
  const cfg = join(kdir, 'kamailio.cfg');
  writeFileSync(cfg, kamailioConfig(kdir, port));
  const rows = users.map(([u, p], i) => `${i + 1}:${u}:127.0.0.1:${p}::`);
  writeFileSync(
    join(kdir, 'kdb', 'subscriber'),
    'id(int,auto) username(str) domain(str) password(str) ha1(str,null) ha1b(str,null)\n' + rows.join('\n') + '\n',
  );
  const k = spawn('/usr/sbin/kamailio', ['-f', cfg, '-DD', '-E', '-m', '256', '-M', '16', '-P', join(kdir, 'k.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  k.stdout.on('data', (d) => (log += d));
  k.stderr.on('data', (d) => (log += d));
  await new Promise((r) => setTimeout(r, 1500));
  if (k.exitCode !== null) return `kamailio did not start:\n${log.slice(-1500)}`;
  try {
    return await runSipp(port, writeCsv(kdir, users, ROUNDS), users.length * ROUNDS, kdir);
  } finally {
    k.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    if (k.exitCode === null) k.kill('SIGKILL');
  }
}

function report(name: string, r: SippResult): void {
  const rate = r.ok / r.seconds;
  console.log(
    `${name}: ${r.ok} registrations ok, ${r.failed} failed in ${r.seconds.toFixed(2)} s → ${rate.toFixed(0)} registrations/s (each = REGISTER, 401, REGISTER+digest, 200; sipp exit ${r.code})`,
  );
  if (r.failed || r.code !== 0) console.log(r.tail);
}

async function main(): Promise<void> {
  if (!existsSync(SIPP)) throw new Error('sipp is not installed (/usr/bin/sipp)');
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-bench-sip-'));
  process.env.VOXSWITCH_ADMIN_PASSWORD = 'bench-admin-pw';
  try {
    const users: Array<[string, string]> = [];
    for (let i = 0; i < USERS; i++) users.push([`u${String(i).padStart(6, '0')}`, `pw-${i}-${(i * 7919) % 10007}`]);
    console.log(
      `REGISTER bench: ${USERS} users × ${ROUNDS} rounds, sipp -r ${RATE} -l ${LIMIT}, UDP, digest MD5 qop=auth`,
    );
    const vox = await benchVoxswitch(dir, users);
    report('voxswitch', vox);
    const m = memoryPer10k();
    console.log(
      `memory per 10,000 bindings: heap +${m.heapMB.toFixed(2)} MB (${m.perBindingBytes} bytes/binding), rss +${m.rssMB.toFixed(2)} MB`,
    );
    if (WITH_KAMAILIO) {
      const k = await benchKamailio(dir, users);
      if (typeof k === 'string') console.log(`kamailio: skipped: ${k}`);
      else {
        report('kamailio (auth_db/db_text, usrloc in memory, 4 children)', k);
        const ratio = vox.ok / vox.seconds / (k.ok / k.seconds);
        console.log(`ratio voxswitch/kamailio: ${(ratio * 100).toFixed(1)}% (target >= 50%)`);
      }
    } else console.log('kamailio: not run (pass --with-kamailio)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
