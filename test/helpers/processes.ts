/**
 * Child processes of the tests (sipp and the other tools): output collected, bounded in time, and for a peer that
 * listens (a sipp UAS) a wait until its socket is really bound instead of a fixed sleep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { freePort } from './ports.js';

export interface ToolResult {
  code: number | null;
  out: string;
}

export interface Running {
  child: ChildProcess;
  done: Promise<ToolResult>;
  /** The output so far (stdout and stderr). */
  output(): string;
  exited(): boolean;
}

/** Spawns `bin`; `done` resolves with its exit code and output (code null when it could not start or was killed). */
export function spawnTool(bin: string, args: string[], cwd?: string, timeoutMs = 30000): Running {
  const child = spawn(bin, args, { cwd });
  let out = '';
  let over = false;
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise<ToolResult>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const finish = (code: number | null) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      resolve({ code, out });
    };
    child.on('error', (e) => {
      out += `\n${bin}: ${e.message}`;
      finish(null);
    });
    child.on('close', (code) => finish(code));
  });
  return { child, done, output: () => out, exited: () => over };
}

export function runTool(bin: string, args: string[], cwd?: string, timeoutMs = 30000): Promise<ToolResult> {
  return spawnTool(bin, args, cwd, timeoutMs).done;
}

export type Proto = 'udp' | 'tcp';

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Linux: whether process `pid` holds a socket bound to `port` (UDP) or listening on it (TCP), from /proc/net. */
function boundByProc(pid: number, port: number, proto: Proto): boolean {
  const inodes = socketInodes(pid);
  if (!inodes.size) return false;
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      if (parseInt(c[1]!.split(':').pop()!, 16) !== port) continue;
      if (proto === 'tcp' && c[3] !== '0A') continue; // 0A = LISTEN
      if (inodes.has(c[9]!)) return true;
    }
  }
  return false;
}

/** Elsewhere: a TCP connect that succeeds, or a UDP bind that finds the port taken. */
function boundByProbe(port: number, proto: Proto): Promise<boolean> {
  return new Promise((res) => {
    if (proto === 'tcp') {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
      return;
    }
    const s = createSocket('udp4');
    s.once('error', () => res(true));
    s.bind(port, '127.0.0.1', () => s.close(() => res(false)));
  });
}

const HAVE_PROC = existsSync('/proc/self/fd') && existsSync('/proc/net/udp');

/**
 * Waits until the process of `run` has bound `port`; throws (with its output) if it exits first or the time is up.
 */
export async function waitBound(run: Running, port: number, proto: Proto, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (run.exited())
      throw new Error(`exited before listening on ${proto} port ${port}:\n${run.output().slice(-1500)}`);
    const pid = run.child.pid;
    if (pid && (HAVE_PROC ? boundByProc(pid, port, proto) : await boundByProbe(port, proto))) return;
    if (Date.now() > end) {
      run.child.kill('SIGKILL');
      throw new Error(`not listening on ${proto} port ${port} after ${timeoutMs} ms:\n${run.output().slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Listening {
  port: number;
  done: Promise<ToolResult>;
  /** Kills the peer (SIGKILL) if it still runs. */
  stop(): void;
}

/**
 * Starts a peer that listens on a port given on its command line (`args(port)`), on a fresh free port unless `port`
 * is fixed, and resolves once it is bound. A port taken between the check and the peer's bind (EADDRINUSE) is
 * retried on another port; any other early exit is an error.
 */
export async function startListening(
  bin: string,
  args: (port: number) => string[],
  opts: { cwd?: string; proto?: Proto; port?: number; timeoutMs?: number } = {},
): Promise<Listening> {
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const run = spawnTool(bin, args(port), opts.cwd, opts.timeoutMs);
    try {
      await waitBound(run, port, opts.proto ?? 'udp');
      return { port, done: run.done, stop: () => void (run.exited() || run.child.kill('SIGKILL')) };
    } catch (e) {
      const inUse = /Address already in use|EADDRINUSE|errno = 98/.test(run.output());
      if (!inUse || opts.port !== undefined || attempt >= 5) throw e;
    }
  }
}
