/**
 * Helpers for the several-nodes tests: a node is one startServer on the shared PostgreSQL database and Redis key
 * prefix of the run, with its own data dir (the data dir key copied from the first node); a UDP phone sends SIP
 * requests (with digest on the challenge) and collects what arrives.
 */
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { startServer, type RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, TEST_OVERRIDES } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { until } from '../state/redis.js';
import { authorize } from '../sip/services/fake.js';
import type { ApiResult } from '../../src/api/types.js';

export const LOCAL = src('127.0.0.1');

export interface Node {
  srv: RunningServer;
  dataDir: string;
  sipPort: number;
  api(entry: string, p?: Record<string, string>): Promise<ApiResult>;
  /** Stops the node (if still running) and removes its data dir. */
  close(): Promise<void>;
}

/** One node of the switch; `keyFrom` is the data dir whose server.key it shares (omit for the first). */
export async function startNode(o: {
  overrides: Record<string, string>;
  prefix: string;
  keyFrom?: string;
  logger?: Logger;
  nodeStatsMs?: number;
}): Promise<Node> {
  process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const dataDir = mkdtempSync(join(tmpdir(), 'voxswitch-node-'));
  if (o.keyFrom) copyFileSync(join(o.keyFrom, 'server.key'), join(dataDir, 'server.key'));
  const srv = await startServer({
    dataDir,
    overrides: {
      ...TEST_OVERRIDES,
      authfailban: '0',
      ...o.overrides,
    },
    announce: () => undefined,
    logger: o.logger ?? pino({ level: 'silent' }),
    statePrefix: o.prefix,
    nodeStatsMs: o.nodeStatsMs,
  });
  let stopped = false;
  return {
    srv,
    dataDir,
    sipPort: srv.services.listeners.find((l) => l.kind === 'sip udp')?.port ?? 0,
    api: (entry, p = {}) => srv.gateway.handle(req(entry, p, LOCAL)),
    async close() {
      if (!stopped) await srv.stop().catch(() => undefined);
      stopped = true;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A pino logger writing into an array (to assert on log lines). */
export function captureLog(lines: Array<{ level: number; msg: string; [k: string]: unknown }>): Logger {
  return pino(
    { level: 'info' },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s));
      },
    },
  );
}

export const headerOf = (m: string, name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(m)?.[1]?.trim() ?? '';
export const statusOf = (res: string) => Number(res.slice(8, 11));

/** A response to a request text: its Via, From, To, Call-ID and CSeq copied. */
export function answer(reqText: string, status: string): string {
  const vias = reqText.split('\r\n').filter((l) => /^Via:/i.test(l));
  return [
    `SIP/2.0 ${status}`,
    ...vias,
    `From: ${headerOf(reqText, 'From')}`,
    `To: ${headerOf(reqText, 'To')}`,
    `Call-ID: ${headerOf(reqText, 'Call-ID')}`,
    `CSeq: ${headerOf(reqText, 'CSeq')}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** A UDP phone (answers the server's NOTIFY and BYE with 200). */
export class Phone {
  readonly sock: Socket = createSocket('udp4');
  readonly inbox: string[] = [];
  port = 0;
  private seq = 0;
  /** Answer every INVITE 200 with SDP (a gateway). */
  answerCalls = false;

  constructor(
    readonly user: string,
    readonly password: string,
  ) {}

  async open(): Promise<this> {
    this.sock.on('message', (m, from) => {
      const text = m.toString('utf8');
      this.inbox.push(text);
      // in-dialog requests of the server (NOTIFY, BYE) are answered 200; a gateway phone answers INVITEs
      if (/^(NOTIFY|BYE) /.test(text)) this.sock.send(answer(text, '200 OK'), from.port, from.address);
      else if (this.answerCalls && text.startsWith('INVITE ')) {
        const ok = answer(text, '200 OK').replace(/^(To: .*)$/m, '$1;tag=gw1');
        const sdp = `v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n`;
        const withSdp = ok
          .replace('Content-Length: 0\r\n', `Contact: <sip:gw@127.0.0.1:${this.port}>\r\n`)
          .replace(/\r\n\r\n$/, `\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`);
        this.sock.send(withSdp, from.port, from.address);
      }
    });
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.port = this.sock.address().port;
    return this;
  }

  close(): void {
    this.sock.close();
  }

  send(text: string, port: number): void {
    this.sock.send(text, port, '127.0.0.1');
  }

  async waitFor(from: number, match: (m: string) => boolean, what: string, ms = 5000): Promise<string> {
    await until(() => this.inbox.slice(from).some(match), ms, what);
    return this.inbox.slice(from).find(match)!;
  }

  /** One request (no auth), answered by its final response. */
  async once(
    port: number,
    method: string,
    ruri: string,
    o: { callId: string; cseq: number; headers?: string[]; body?: string; auth?: string; toTag?: string },
  ): Promise<string> {
    const branch = `z9hG4bK${Date.now().toString(36)}x${++this.seq}`;
    const body = o.body ?? '';
    const lines = [
      `${method} ${ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${this.user}@127.0.0.1>;tag=t${this.user}`,
      `To: <${method === 'REGISTER' ? `sip:${this.user}@127.0.0.1` : ruri}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
      `Call-ID: ${o.callId}`,
      `CSeq: ${o.cseq} ${method}`,
      `Contact: <sip:${this.user}@127.0.0.1:${this.port}>`,
      ...(o.headers ?? []),
      ...(o.auth ? [o.auth] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    const mark = this.inbox.length;
    this.send(lines.join('\r\n'), port);
    const final = (m: string) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && m.includes(branch);
    return this.waitFor(mark, final, `${method} answer`);
  }

  /** A request with digest: sent, challenged (401/407), sent again with credentials. */
  async request(
    port: number,
    method: string,
    ruri: string,
    o: { callId?: string; headers?: string[]; body?: string; toTag?: string } = {},
  ): Promise<string> {
    const callId = o.callId ?? `${method.toLowerCase()}-${Date.now()}-${this.seq}`;
    const first = await this.once(port, method, ruri, { ...o, callId, cseq: ++this.seq });
    const st = statusOf(first);
    if (st !== 401 && st !== 407) return first;
    const name = st === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const auth = authorize(headerOf(first, name), this.user, this.password, method, ruri, 1);
    const header = `${st === 401 ? 'Authorization' : 'Proxy-Authorization'}: ${auth}`;
    return this.once(port, method, ruri, { ...o, callId, cseq: ++this.seq, auth: header });
  }

  /** An INVITE with digest (407 answered with ACK), its final answer; a 2xx is acknowledged and gives the dialog. */
  async invite(port: number, to: string): Promise<{ status: number; res: string; dialog?: Dialog }> {
    const callId = `call-${Date.now().toString(36)}-${++this.seq}-${this.port}`;
    const ruri = `sip:${to}@127.0.0.1`;
    const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n`;
    const headers = ['Content-Type: application/sdp'];
    let cseq = 1;
    let res = await this.inviteOnce(port, ruri, callId, cseq, headers, sdp);
    if (statusOf(res) === 407) {
      const auth = authorize(headerOf(res, 'Proxy-Authenticate'), this.user, this.password, 'INVITE', ruri, 1);
      res = await this.inviteOnce(port, ruri, callId, ++cseq, [...headers, `Proxy-Authorization: ${auth}`], sdp);
    }
    const status = statusOf(res);
    if (status < 200 || status >= 300) return { status, res };
    const toTag = /tag=([^;\s>]+)/.exec(headerOf(res, 'To'))![1]!;
    const target = /<([^>]+)>/.exec(headerOf(res, 'Contact'))?.[1] ?? ruri;
    const dialog: Dialog = { callId, toTag, target, to: ruri, cseq, port };
    this.send(this.inDialog('ACK', dialog, cseq), port);
    return { status, res, dialog };
  }

  private async inviteOnce(
    port: number,
    ruri: string,
    callId: string,
    cseq: number,
    headers: string[],
    body: string,
  ): Promise<string> {
    const branch = `z9hG4bKi${Date.now().toString(36)}x${++this.seq}`;
    const via = `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`;
    const from = `From: <sip:${this.user}@127.0.0.1>;tag=c${this.port}`;
    const lines = [`INVITE ${ruri} SIP/2.0`, via, 'Max-Forwards: 70', from, `To: <${ruri}>`, `Call-ID: ${callId}`];
    lines.push(`CSeq: ${cseq} INVITE`, `Contact: <sip:${this.user}@127.0.0.1:${this.port}>`, ...headers);
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    const mark = this.inbox.length;
    this.send(lines.join('\r\n'), port);
    const final = (m: string) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && m.includes(branch);
    const res = await this.waitFor(mark, final, 'INVITE answer', 10_000);
    if (statusOf(res) >= 300) {
      const ack = [`ACK ${ruri} SIP/2.0`, via, 'Max-Forwards: 70', from, `To: ${headerOf(res, 'To')}`];
      ack.push(`Call-ID: ${callId}`, `CSeq: ${cseq} ACK`, 'Content-Length: 0', '', '');
      this.send(ack.join('\r\n'), port);
    }
    return res;
  }

  private inDialog(method: string, d: Dialog, cseq: number): string {
    const branch = `z9hG4bKd${Date.now().toString(36)}x${++this.seq}`;
    return [
      `${method} ${d.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${this.user}@127.0.0.1>;tag=c${this.port}`,
      `To: <${d.to}>;tag=${d.toTag}`,
      `Call-ID: ${d.callId}`,
      `CSeq: ${cseq} ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  }

  /** Ends a call: BYE in its dialog, answered by its final response. */
  async bye(d: Dialog): Promise<string> {
    const text = this.inDialog('BYE', d, ++d.cseq);
    const branch = /branch=([^;\s]+)/.exec(text)![1]!;
    const mark = this.inbox.length;
    this.send(text, d.port);
    return this.waitFor(mark, (m) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && m.includes(branch), 'BYE answer');
  }
}

export interface Dialog {
  callId: string;
  toTag: string;
  /** the remote Contact (request URI of in-dialog requests) */
  target: string;
  to: string;
  cseq: number;
  /** the node's SIP port */
  port: number;
}
