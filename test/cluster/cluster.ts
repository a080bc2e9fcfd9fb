/**
 * The helpers of the cluster tests: `voxswitch serve --workers N` as a child process on PostgreSQL + Redis, the API
 * over HTTP, a phone that registers with digest over UDP (from the port a sipp UAS takes over afterwards) and a small
 * TCP phone that registers, answers INVITEs and BYEs on its one connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { get } from 'node:http';
import { freshPgDatabase, pgClient } from '../helpers/pg.js';
import { needTool } from '../helpers/tools.js';
import { redisMissing } from '../state/redis.js';
import { freePort } from '../helpers/ports.js';
import { eventually } from '../helpers/wait.js';
import { authorize } from '../sip/services/fake.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const ADMIN_PW = 'cluster-admin-pw';

/** Why the cluster tests cannot run here (Redis, PostgreSQL or sipp missing), or false. */
export async function clusterSkip(): Promise<string | false> {
  const missing = await redisMissing();
  if (missing) return missing;
  const pgCheck = await pgClient();
  if ('skip' in pgCheck) return pgCheck.skip;
  await pgCheck.client.end();
  return needTool('sipp');
}

export interface Cluster {
  child: ChildProcess;
  dir: string;
  out(): string;
  apiPort: number;
  sipPort: number;
  pgUrl: string;
  pids: string[];
  /** The workers' private hand-off ports, in worker order. */
  handoffPorts: number[];
  api(entry: string, params: Record<string, string>): Promise<{ status: string; text: string; fields?: object }>;
  stop(): Promise<void>;
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve(c.exitCode)
    : new Promise<number | null>((r) => c.once('exit', (code) => r(code)));

/**
 * `serve --workers N` on a fresh PostgreSQL database (or `o.pgUrl`, another node's, not dropped here) and Redis
 * `redisUrl` (a database per test file); `o.keyFrom`: the data dir whose server.key this node shares.
 */
export async function startCluster(
  workers: number,
  redisUrl: string,
  extra: Record<string, string> = {},
  o: { pgUrl?: string; keyFrom?: string } = {},
): Promise<Cluster | { skip: string }> {
  const pg = o.pgUrl ? { url: o.pgUrl, drop: async () => undefined } : await freshPgDatabase();
  if ('skip' in pg) return pg;
  const dir = mkdtempSync(join(tmpdir(), 'vx-cluster-'));
  if (o.keyFrom) copyFileSync(join(o.keyFrom, 'server.key'), join(dir, 'server.key'));
  const apiPort = await freePort();
  const sipPort = await freePort();
  const sets: Record<string, string> = {
    dburl: pg.url,
    redisurl: redisUrl,
    // this run's bindings only: a node id of its own
    nodeid: `cl-${process.pid}-${Date.now().toString(36)}`,
    mainaport: String(apiPort),
    apibindaddr: '127.0.0.1',
    sipport: String(sipPort),
    sipbindaddr: '127.0.0.1',
    apilimitip: '0',
    apilimituser: '0',
    apilimitglobal: '0',
    authfailban: '0',
    loglevel: 'warn',
    overloaddelay: '0',
    ...extra,
  };
  const args = ['serve', '--data-dir', dir, '--workers', String(workers)];
  for (const [k, v] of Object.entries(sets)) args.push('--set', `${k}=${v}`);
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: ADMIN_PW },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited(child);
    clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
    await pg.drop();
  };
  try {
    const up = workers > 1 ? /SIP hand-off on/ : /database: /;
    await eventually(() => up.test(out) || child.exitCode !== null, 'workers ready', 60_000);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  const ready =
    workers > 1 ? new RegExp(`workers: ${workers} ready \\(pids ([\\d, ]+)\\)`).exec(out) : [, String(child.pid)];
  const hand = workers > 1 ? /SIP hand-off on 127\.0\.0\.1 ports ([\d, ]+)/.exec(out) : [, ''];
  if (!ready || !hand) {
    await stop();
    throw new Error(`the cluster did not start:\n${out}`);
  }
  const api = (entry: string, params: Record<string, string>) =>
    httpJson(apiPort, { apientry: entry, authid: 'admin', authpwd: ADMIN_PW, format: 'json', ...params });
  return {
    child,
    dir,
    out: () => out,
    apiPort,
    sipPort,
    pgUrl: pg.url,
    pids: ready[1]!.split(', '),
    handoffPorts: hand[1] ? hand[1].split(', ').map(Number) : [],
    api,
    stop,
  };
}

function httpJson(port: number, q: Record<string, string>): Promise<{ status: string; text: string; fields?: object }> {
  const path = '/mvapireq/?' + new URLSearchParams(q).toString();
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(new Error(`${(e as Error).message}: ${body}`));
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('API request timed out')));
  });
}

export const headerOf = (m: string, name: string) =>
  new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(m)?.[1]?.trim() ?? '';
const statusOf = (m: string) => Number(m.slice(8, 11));

function registerText(user: string, transport: string, port: number, callId: string, cseq: number, auth?: string) {
  return [
    'REGISTER sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/${transport} 127.0.0.1:${port};branch=z9hG4bK-reg-${callId}-${cseq};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@127.0.0.1>;tag=r${cseq}`,
    `To: <sip:${user}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${user}@127.0.0.1:${port}${transport === 'TCP' ? ';transport=tcp' : ''}>`,
    'Expires: 600',
    ...(auth ? [`Authorization: ${auth}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** REGISTER with digest over UDP from 127.0.0.1:`fromPort` (then the port is free again for a sipp UAS). */
export async function registerUdp(sipPort: number, user: string, pw: string, fromPort: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(fromPort, '127.0.0.1', () => r()));
  const inbox: string[] = [];
  sock.on('message', (m) => inbox.push(m.toString('latin1')));
  const final = async (from: number) => {
    await eventually(() => inbox.slice(from).some((m) => statusOf(m) >= 200), 'REGISTER answered', 5000);
    return inbox.slice(from).find((m) => statusOf(m) >= 200)!;
  };
  try {
    const callId = `reg-${user}-${Date.now()}`;
    sock.send(registerText(user, 'UDP', fromPort, callId, 1), sipPort, '127.0.0.1');
    const ch = await final(0);
    if (statusOf(ch) !== 401) throw new Error(`REGISTER: ${ch}`);
    const auth = authorize(headerOf(ch, 'WWW-Authenticate'), user, pw, 'REGISTER', 'sip:127.0.0.1', 1);
    const mark = inbox.length;
    sock.send(registerText(user, 'UDP', fromPort, callId, 2, auth), sipPort, '127.0.0.1');
    const ok = await final(mark);
    if (statusOf(ok) !== 200) throw new Error(`REGISTER: ${ok}`);
  } finally {
    sock.close();
  }
}

/**
 * A phone on one TCP connection: registers with digest, then answers every INVITE 180 + 200 (with SDP), every BYE
 * 200, and keeps what it received.
 */
export class TcpPhone {
  private sock!: Socket;
  private buf = Buffer.alloc(0);
  readonly received: string[] = [];
  localPort = 0;

  async open(sipPort: number): Promise<void> {
    this.sock = connect({ host: '127.0.0.1', port: sipPort });
    await new Promise<void>((r, j) => this.sock.once('connect', () => r()).once('error', j));
    this.localPort = this.sock.localPort!;
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', () => undefined);
  }

  close(): void {
    this.sock.destroy();
  }

  async register(user: string, pw: string): Promise<void> {
    const callId = `tcpreg-${user}-${Date.now()}`;
    const final = async (from: number) => {
      const f = (m: string) => m.startsWith('SIP/2.0 ') && statusOf(m) >= 200;
      await eventually(() => this.received.slice(from).some(f), 'REGISTER answered over TCP', 5000);
      return this.received.slice(from).find(f)!;
    };
    let mark = this.received.length;
    this.sock.write(registerText(user, 'TCP', this.localPort, callId, 1));
    const ch = await final(mark);
    if (statusOf(ch) !== 401) throw new Error(`REGISTER: ${ch}`);
    const auth = authorize(headerOf(ch, 'WWW-Authenticate'), user, pw, 'REGISTER', 'sip:127.0.0.1', 1);
    mark = this.received.length;
    this.sock.write(registerText(user, 'TCP', this.localPort, callId, 2, auth));
    const ok = await final(mark);
    if (statusOf(ok) !== 200) throw new Error(`REGISTER: ${ok}`);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      while (this.buf.length >= 2 && this.buf[0] === 13 && this.buf[1] === 10) this.buf = this.buf.subarray(2);
      const he = this.buf.indexOf('\r\n\r\n');
      if (he < 0) return;
      const head = this.buf.toString('latin1', 0, he);
      const cl = Number(headerOf(head, '(?:Content-Length|l)') || 0);
      if (this.buf.length < he + 4 + cl) return;
      const msg = this.buf.toString('latin1', 0, he + 4 + cl);
      this.buf = this.buf.subarray(he + 4 + cl);
      this.received.push(msg);
      this.answer(msg);
    }
  }

  private answer(m: string): void {
    const method = /^([A-Z]+) /.exec(m)?.[1];
    if (method === 'INVITE') {
      this.sock.write(this.response(m, '180 Ringing'));
      const sdp =
        'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n';
      setTimeout(() => this.sock.write(this.response(m, '200 OK', sdp)), 50);
    } else if (method === 'BYE' || method === 'OPTIONS' || method === 'NOTIFY') {
      this.sock.write(this.response(m, '200 OK'));
    }
  }

  private response(req: string, status: string, sdp = ''): string {
    const vias = req.split('\r\n').filter((l) => /^(Via|v):/i.test(l));
    const to = headerOf(req, 'To');
    const tag = /;tag=/.test(to) ? '' : `;tag=tcp-${headerOf(req, 'Call-ID').slice(0, 12)}`;
    return [
      `SIP/2.0 ${status}`,
      ...vias,
      `From: ${headerOf(req, 'From')}`,
      `To: ${to}${tag}`,
      `Call-ID: ${headerOf(req, 'Call-ID')}`,
      `CSeq: ${headerOf(req, 'CSeq')}`,
      `Contact: <sip:127.0.0.1:${this.localPort};transport=tcp>`,
      ...(sdp ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(sdp)}`,
      '',
      sdp,
    ].join('\r\n');
  }
}

/** Linux: which of `pids` holds the server side of the TCP connection 127.0.0.1:`clientPort` → :`serverPort`. */
export function holderOf(pids: string[], clientPort: number, serverPort: number): string | undefined {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  const row = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === `0100007F:${hex(serverPort)}` && f[2] === `0100007F:${hex(clientPort)}`);
  const inode = row?.[9];
  if (!inode) return undefined;
  return pids.find((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}
