/**
 * bench/api: `balance` with salted-md5 authentication over HTTP keep-alive (50 connections) against a bare
 * node:http server answering a constant, both measured in the same run on this machine; then UDP requests/s.
 * Prints requests/s, latency percentiles and the ratio. Usage: npm run bench:api [-- seconds]
 * With VOXSWITCH_BENCH_LOGS=1 it compares instead two voxswitch servers of the same build, logging off
 * (loglevel=silent) and at loglevel=info (one tcp access line per request), alternating two rounds of each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import autocannon from 'autocannon';
import { freePort, waitFor } from '../lib/http.js';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = 50;
const KEY = 'benchkey';
const SALT = 'benchsalt';
const LOGS = process.env.VOXSWITCH_BENCH_LOGS === '1';
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

async function cannon(port: number, path: () => string): Promise<autocannon.Result> {
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: SECONDS,
    pipelining: 1,
    requests: [{ method: 'GET', setupRequest: (r: any) => ({ ...r, path: path() }) }],
  } as autocannon.Options);
}

function report(name: string, r: autocannon.Result): void {
  const l = r.latency as unknown as Record<string, number>;
  console.log(
    `${name.padEnd(28)} ${Math.round(r.requests.average).toString().padStart(7)} req/s   p50 ${l.p50} ms  p99 ${l.p99} ms  max ${l.max} ms   2xx ${r['2xx']}  non2xx ${r.non2xx}  errors ${r.errors}  timeouts ${r.timeouts}`,
  );
}

async function udpRate(port: number, seconds: number, make: () => string): Promise<{ rps: number; errors: number }> {
  const sock = createSocket('udp4');
  let answered = 0;
  let errors = 0;
  const WINDOW = 64;
  const end = Date.now() + seconds * 1000;
  await new Promise<void>((resolve) => {
    let inflight = 0;
    const send = () => {
      while (inflight < WINDOW && Date.now() < end) {
        inflight++;
        sock.send(make(), port, '127.0.0.1');
      }
      if (Date.now() >= end && inflight === 0) resolve();
    };
    sock.on('message', (m) => {
      inflight--;
      answered++;
      if (!m.toString().endsWith('OK')) errors++;
      send();
    });
    // a lost datagram must not stall the window
    const timer = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(timer);
        resolve();
      } else if (inflight >= WINDOW) inflight = Math.floor(WINDOW / 2);
      send();
    }, 200);
    send();
  });
  sock.close();
  return { rps: Math.round(answered / seconds), errors };
}

/** A voxswitch server (a child process) on port, with its data dir and log level. */
function spawnVox(port: number, dataDir: string, level: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      'bin/voxswitch.js',
      'serve',
      '--data-dir',
      dataDir,
      ...[
        'mainaport=' + port,
        'apibindaddr=127.0.0.1',
        'usesip=false',
        'apiv2key=' + KEY,
        'apiv2md5salt=' + SALT,
        'apilimitip=0',
        'apilimituser=0',
        'apilimitglobal=0',
        'loglevel=' + level,
      ].flatMap((s) => ['--set', s]),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'benchadmin' } },
  );
}

async function createBenchUser(port: number): Promise<void> {
  const created = await (
    await fetch(
      `http://127.0.0.1:${port}/mvapireq/?apientry=newuseri&u_username=bench&u_password=benchpw&u_credit=12.5`,
    )
  ).text();
  if (!created.endsWith('OK')) throw new Error(`could not create the bench user: ${created}`);
}

/** Logging off (vport, loglevel=silent) against logging at info (a second server), two alternating rounds each. */
async function compareLogs(vport: number, dir: string, children: ChildProcess[], path: () => string): Promise<void> {
  const lport = await freePort();
  const ldir = join(dir, 'logs-on');
  mkdirSync(ldir);
  const on = spawnVox(lport, ldir, 'info');
  children.push(on);
  await waitFor(`http://127.0.0.1:${lport}/mvapireq/?apientry=apitest`);
  await createBenchUser(lport);
  console.log(`bench/api logs: ${CONNECTIONS} keep-alive connections, ${SECONDS} s a round, node ${process.version}`);
  for (const p of [vport, lport])
    await autocannon({
      url: `http://127.0.0.1:${p}`,
      connections: 10,
      duration: 2,
      requests: [{ setupRequest: (r: any) => ({ ...r, path: path() }) }],
    } as autocannon.Options);
  const sum = { off: 0, on: 0 };
  for (let round = 1; round <= 2; round++) {
    const off = await cannon(vport, path);
    report(`logs off, round ${round}`, off);
    const inf = await cannon(lport, path);
    report(`logs info, round ${round}`, inf);
    sum.off += off.requests.average;
    sum.on += inf.requests.average;
    if (off.non2xx || off.errors || inf.non2xx || inf.errors) process.exitCode = 1;
  }
  console.log(
    `logs off ${Math.round(sum.off / 2)} req/s, logs info ${Math.round(sum.on / 2)} req/s: ` +
      `ratio info/off ${((100 * sum.on) / sum.off).toFixed(1)}% (target >= 90%)`,
  );
  const lines = readFileSync(join(ldir, 'logs', 'tcp.log'), 'utf8').split('\n').length - 1;
  console.log(`tcp.log of the logging server: ${lines} lines (the rotated files aside)`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vx-bench-'));
  const children: ChildProcess[] = [];
  try {
    const [vport, bport] = [await freePort(), await freePort()];
    const bare = spawn(
      process.execPath,
      [
        '-e',
        `require('http').createServer((q,s)=>{s.setHeader('content-type','text/plain; charset=utf-8');s.end('12.50 USD\\r\\nOK')}).listen(${bport},'127.0.0.1')`,
      ],
      { stdio: 'inherit' },
    );
    children.push(bare);
    const vox = spawnVox(vport, dir, LOGS ? 'silent' : 'warn');
    children.push(vox);
    await waitFor(`http://127.0.0.1:${bport}/`);
    await waitFor(`http://127.0.0.1:${vport}/mvapireq/?apientry=apitest`);
    await createBenchUser(vport);

    let n = 0;
    const balancePath = () => {
      const salt = `${process.pid}x${n++}`;
      return `/mvapireq/?apientry=balance&authkey=${KEY}&authid=bench&authmd5=${md5('ck5Gp' + 'bench' + 'benchpw' + SALT + salt)}&authsalt=${salt}`;
    };
    const check = await (await fetch(`http://127.0.0.1:${vport}${balancePath()}`)).text();
    if (check !== '12.50 USD\r\nOK') throw new Error(`unexpected balance answer: ${JSON.stringify(check)}`);

    if (LOGS) return await compareLogs(vport, dir, children, balancePath);
    console.log(`bench/api: ${CONNECTIONS} keep-alive connections, ${SECONDS} s each, node ${process.version}`);
    // warm-up both
    await autocannon({ url: `http://127.0.0.1:${bport}/`, connections: 10, duration: 2 } as autocannon.Options);
    await autocannon({
      url: `http://127.0.0.1:${vport}`,
      connections: 10,
      duration: 2,
      requests: [{ setupRequest: (r: any) => ({ ...r, path: balancePath() }) }],
    } as autocannon.Options);
    // the bare server gets the very same generated requests, so the load generator's work is the same
    const b = await cannon(bport, balancePath);
    report('bare node:http constant', b);
    const v = await cannon(vport, balancePath);
    report('voxswitch balance (md5)', v);
    const ratio = v.requests.average / b.requests.average;
    console.log(
      `ratio voxswitch/bare: ${(ratio * 100).toFixed(1)}%  (target >= 60%)   voxswitch p99: ${(v.latency as any).p99} ms (target < 5 ms)`,
    );

    let u = 0;
    const udp = await udpRate(vport, Math.min(SECONDS, 5), () => {
      const salt = `u${process.pid}x${u++}`;
      return `apientry=balance&authkey=${KEY}&authid=bench&authmd5=${md5('ck5Gp' + 'bench' + 'benchpw' + SALT + salt)}&authsalt=${salt}`;
    });
    console.log(`voxswitch UDP balance (md5): ${udp.rps} req/s, ${udp.errors} error answers`);
    if (v.non2xx || v.errors) process.exitCode = 1;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
