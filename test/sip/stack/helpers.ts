// Helpers for the SIP stack tests: raw SIP text builders, a fake transport env, and socket clients.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMessage, SipStreamFramer } from '../../../src/sip/message/index.js';
import type { SipMessage, SipRequest, SipResponse } from '../../../src/sip/message/index.js';
import { FakeTimers } from '../../../src/sip/transaction/timers.js';
import type { TxEnv } from '../../../src/sip/transaction/types.js';
import type { SipSource, SipTarget } from '../../../src/sip/transport/types.js';

let seq = 0;
export function uniq(): string {
  return Date.now().toString(36) + (seq++).toString(36);
}

export interface ReqOpts {
  method?: string;
  uri?: string;
  transport?: string;
  host?: string;
  port?: number;
  branch?: string;
  rport?: boolean;
  callId?: string;
  cseq?: number;
  fromTag?: string;
  toTag?: string;
  extra?: string[];
  body?: string;
}

/** Raw SIP request text (CRLF line ends, Content-Length set). */
export function rawRequest(o: ReqOpts = {}): string {
  const method = o.method ?? 'OPTIONS';
  const body = o.body ?? '';
  const lines = [
    `${method} ${o.uri ?? 'sip:bob@127.0.0.1'} SIP/2.0`,
    `Via: SIP/2.0/${o.transport ?? 'UDP'} ${o.host ?? '127.0.0.1'}:${o.port ?? 5999};branch=${o.branch ?? 'z9hG4bK' + uniq()}${o.rport === false ? '' : ';rport'}`,
    'Max-Forwards: 70',
    `From: <sip:alice@127.0.0.1>;tag=${o.fromTag ?? 'ft' + uniq()}`,
    `To: <sip:bob@127.0.0.1>${o.toTag ? ';tag=' + o.toTag : ''}`,
    `Call-ID: ${o.callId ?? 'c' + uniq()}`,
    `CSeq: ${o.cseq ?? 1} ${method === 'ACK' ? 'ACK' : method}`,
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return lines.join('\r\n');
}

export function parseReq(text: string | Buffer): SipRequest {
  const r = parseMessage(typeof text === 'string' ? Buffer.from(text) : text);
  if (!r.ok) assert.fail('unparseable: ' + r.reason);
  assert.equal(r.msg.type, 'request');
  return r.msg as SipRequest;
}

export function parseRes(buf: Buffer | string): SipResponse {
  const r = parseMessage(typeof buf === 'string' ? Buffer.from(buf) : buf);
  if (!r.ok) assert.fail('unparseable response: ' + r.reason);
  assert.equal(r.msg.type, 'response');
  return r.msg as SipResponse;
}

export function parseAny(buf: Buffer): SipMessage {
  const r = parseMessage(buf);
  if (!r.ok) assert.fail('unparseable: ' + r.reason);
  return r.msg;
}

/** Transaction env with fake timers, recording sends and terminations. */
export function fakeEnv(opts: { failSend?: boolean } = {}): {
  env: TxEnv;
  timers: FakeTimers;
  sent: Array<{ buf: Buffer; target: SipTarget }>;
  terminated: Array<{ key: string; server: boolean }>;
} {
  const timers = new FakeTimers();
  const sent: Array<{ buf: Buffer; target: SipTarget }> = [];
  const terminated: Array<{ key: string; server: boolean }> = [];
  const env: TxEnv = {
    timers,
    t: { T1: 500, T2: 4000, T4: 5000 },
    send: (buf, target, onError) => {
      if (opts.failSend) onError(new Error('send failed'));
      else sent.push({ buf, target });
    },
    terminated: (key, _tx, server) => terminated.push({ key, server }),
    debug: () => undefined,
  };
  return { env, timers, sent, terminated };
}

export const UDP_SRC: SipSource = {
  transport: 'udp',
  ip: '127.0.0.1',
  port: 5999,
  localIp: '127.0.0.1',
  localPort: 5060,
};

/** A UDP peer on 127.0.0.1 collecting what it receives. */
export class UdpPeer {
  readonly sock = dgram.createSocket('udp4');
  readonly inbox: Buffer[] = [];
  private waiters: Array<() => void> = [];
  port = 0;
  async bind(): Promise<this> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.port = this.sock.address().port;
    this.sock.on('message', (m) => {
      this.inbox.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
    return this;
  }
  send(text: string | Buffer, port: number): void {
    this.sock.send(typeof text === 'string' ? Buffer.from(text) : text, port, '127.0.0.1');
  }
  /** Waits until `pred` holds for the inbox (or fails after `ms`). */
  async until(pred: (inbox: Buffer[]) => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred(this.inbox)) {
      const left = end - Date.now();
      if (left <= 0)
        assert.fail('timed out waiting; inbox: ' + this.inbox.map((b) => b.toString().split('\r\n')[0]).join(' | '));
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  close(): void {
    this.sock.close();
  }
}

/** A stream (TCP or TLS socket) peer framing what it receives. */
export class StreamPeer {
  readonly inbox: Buffer[] = [];
  readonly raw: Buffer[] = [];
  private readonly framer = new SipStreamFramer();
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.raw.push(d);
      for (const ev of this.framer.push(d)) if (ev.type === 'message') this.inbox.push(ev.data);
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }
  static connect(port: number): Promise<StreamPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new StreamPeer(s)));
      s.once('error', reject);
    });
  }
  send(text: string | Buffer): void {
    this.sock.write(text);
  }
  async until(pred: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end)
        assert.fail('timed out waiting; inbox: ' + this.inbox.map((b) => b.toString().split('\r\n')[0]).join(' | '));
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  close(): void {
    this.sock.destroy();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function firstLine(b: Buffer): string {
  const s = b.toString('latin1');
  return s.slice(0, s.indexOf('\r\n'));
}

export function header(b: Buffer, name: string): string | undefined {
  const msg = parseAny(b);
  const key = name.toLowerCase();
  return msg.headers.find((h) => h.name.toLowerCase() === key)?.value;
}

/** Self-signed certificate for 127.0.0.1 (openssl CLI), files removed right away. */
export function selfSigned(): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'sipa-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'k.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
