/**
 * The registrars the REGISTER bench drives: voxswitch (`voxswitch serve` as a child process on a data dir whose users
 * were created beforehand) and Kamailio (the shared benchmark configuration, children = cores, usrloc in memory,
 * pv_auth_check against the password `pw-` + username).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';

export interface Target {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
  /** What the server wrote to stdout/stderr so far (voxswitch only: its warnings explain failed registrations). */
  output?: () => string;
}

export const KAMAILIO = '/usr/sbin/kamailio';
export const KAMAILIO_CFG = resolve(process.cwd(), '../shared/bench/kamailio-registrar.cfg');

/** Creates users NAME with password pw-NAME in a fresh data dir (SQLite), through UserService. */
/** `sets`: `--set k=v` options of the bench (e.g. dburl, redisurl for --workers N), used here and by serve. */
export async function prepareDataDir(dataDir: string, users: readonly string[], sets: string[] = []): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  const extra = Object.fromEntries(sets.map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));
  const srv = await startServer({
    dataDir,
    overrides: { ...extra, usesip: 'false', usemainaport: 'false' },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  try {
    for (const u of users) await srv.services.users.create({ username: u, password: `pw-${u}` });
  } finally {
    await srv.stop();
  }
}

function freeUdpPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    s.on('error', rej);
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function waitFor(p: ChildProcess, out: () => string, re: RegExp, ms: number): Promise<void> {
  return new Promise((res, rej) => {
    const t0 = Date.now();
    const tick = () => {
      if (re.test(out())) return res();
      if (p.exitCode !== null) return rej(new Error(`exited (${p.exitCode}):\n${out().slice(-1500)}`));
      if (Date.now() - t0 > ms) return rej(new Error(`not ready after ${ms} ms:\n${out().slice(-1500)}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

function stopChild(p: ChildProcess, ms = 5000): Promise<void> {
  return new Promise((res) => {
    if (p.exitCode !== null) return res();
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.once('exit', () => {
      clearTimeout(t);
      res();
    });
    p.kill('SIGTERM');
  });
}

export interface VoxOptions {
  dataDir: string;
  /** `--workers N` for `voxswitch serve` (passed on only when given) */
  workers?: number;
  /** directory for node --cpu-prof profiles of the server process */
  profileDir?: string;
  /** another build's bin/voxswitch.js (a baseline to compare with); default this tree's */
  bin?: string;
  /** name in the report */
  label?: string;
  /** more `--set k=v` options for serve (dburl and redisurl for several workers) */
  sets?: string[];
}

/** Runs `voxswitch serve` on the data dir with SIP on a free UDP port of 127.0.0.1, no API listener, quiet log. */
export async function startVoxswitch(o: VoxOptions): Promise<Target> {
  const port = await freeUdpPort();
  const node = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : [];
  const args = [
    ...node,
    o.bin ?? resolve(process.cwd(), 'bin/voxswitch.js'),
    'serve',
    '--data-dir',
    o.dataDir,
    ...['sipport=' + port, 'sipbindaddr=127.0.0.1', 'usemainaport=false', 'loglevel=warn', 'authfailban=0']
      .concat(['sipmaxexpires=3600'])
      .flatMap((s) => ['--set', s]),
    ...(o.sets ?? []).flatMap((s) => ['--set', s]),
    // one process unless asked: with dburl and redisurl the automatic count would be one per core
    ...['--workers', String(o.workers ?? 1)],
  ];
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  await waitFor(p, () => out, (o.workers ?? 1) > 1 ? /workers: \d+ ready/ : /listening: sip/i, 60_000);
  return {
    name: (o.label ?? 'voxswitch') + (o.workers ? ` --workers ${o.workers}` : ' (1 process)'),
    port,
    pid: p.pid!,
    stop: () => stopChild(p),
    output: () => out,
  };
}

/** Installs kamailio with apt-get when missing; returns why it is not usable, or null. */
export function ensureKamailio(): string | null {
  if (!existsSync(KAMAILIO)) {
    process.stdout.write('installing kamailio (apt-get install -y kamailio) ...\n');
    const r = spawnSync('apt-get', ['install', '-y', '-q', 'kamailio'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0 || !existsSync(KAMAILIO)) return 'kamailio could not be installed (apt-get install -y kamailio)';
  }
  return null;
}

/** Starts Kamailio from the shared configuration, with children = cores; null plus a reason when it cannot. */
export async function startKamailio(cfgPath: string, dir: string): Promise<Target | string> {
  if (!existsSync(cfgPath)) return `the Kamailio configuration ${cfgPath} is missing (pass --kamailio-cfg PATH)`;
  const why = ensureKamailio();
  if (why) return why;
  const text = readFileSync(cfgPath, 'utf8');
  const m = /listen=udp:127\.0\.0\.1:(\d+)/.exec(text);
  if (!m) return `${cfgPath} does not listen on udp:127.0.0.1:PORT`;
  const children = cpus().length;
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(cfg, text.replace(/^children=\d+/m, `children=${children}`));
  const pidFile = join(dir, 'kamailio.pid');
  const p = spawn(KAMAILIO, ['-f', cfg, '-DD', '-E', '-m', '256', '-M', '16', '-P', pidFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  await new Promise((r) => setTimeout(r, 1500));
  if (p.exitCode !== null) return `kamailio did not start:\n${out.slice(-1500)}`;
  return { name: `kamailio (${children} children)`, port: Number(m[1]), pid: p.pid!, stop: () => stopChild(p) };
}

/** CPU seconds (user + system) a process and its children (cluster workers) have used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const read = (p: number): number => {
    try {
      // fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 per second)
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      return 0;
    }
  };
  let s = read(pid);
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean))
      s += read(Number(c));
  } catch {
    /* no children list */
  }
  return s;
}

/** Resident set size of a process and its children (kB from /proc), in MB. */
export function rssMB(pid: number): number {
  const read = (p: number): number => {
    try {
      const s = readFileSync(`/proc/${p}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  let kb = read(pid);
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean))
      kb += read(Number(c));
  } catch {
    /* no children list */
  }
  return kb / 1024;
}
