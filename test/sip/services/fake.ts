/** Test doubles for the SIP services: a fake stack (records requests it is asked to send) and server transactions. */
import { EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import { parseMessage, getHeader, type SipRequest, type SipResponse } from '../../../src/sip/message/index.js';
import type { ClientTransaction, ServerTransaction, SipSource, SipTarget } from '../../../src/sip/stack.js';
import type { SipStackLike } from '../../../src/sip/server.js';
import { digestResponse, ha1, parseDigestHeader, type DigestAlgorithm } from '../../../src/sip/services/digest.js';

export interface Sent {
  req: SipRequest;
  target: SipTarget;
  ct: ClientTransaction;
}

export class FakeStack implements SipStackLike {
  sent: Sent[] = [];
  /** How a sent request is answered: a status (final response on the next tick) or null (timeout). */
  answer: (req: SipRequest, target: SipTarget) => number | null = () => 200;
  handler?: (req: SipRequest, tx: ServerTransaction, src: SipSource) => void;
  async start() {
    return [{ transport: 'udp' as const, address: '127.0.0.1', port: 5060 }];
  }
  async stop() {}
  onRequest(h: (req: SipRequest, tx: ServerTransaction, src: SipSource) => void) {
    this.handler = h;
  }
  onAck() {}
  request(req: SipRequest, target: SipTarget): ClientTransaction {
    const ct = new EventEmitter() as ClientTransaction;
    this.sent.push({ req, target, ct });
    const st = this.answer(req, target);
    setImmediate(() => {
      if (st === null) ct.emit('timeout');
      else
        ct.emit('final', {
          type: 'response',
          version: 'SIP/2.0',
          status: st,
          reason: 'X',
          headers: [],
          body: Buffer.alloc(0),
        } satisfies SipResponse);
    });
    return ct;
  }
  sendStateless() {}
  localAddress() {
    return { host: '127.0.0.1', port: 5060 };
  }
  connections() {
    return 0;
  }
}

export class FakeTx implements ServerTransaction {
  responses: SipResponse[] = [];
  state = 'trying';
  constructor(
    readonly request: SipRequest,
    readonly src: SipSource,
  ) {}
  respond(res: SipResponse) {
    this.responses.push(res);
  }
  get last(): SipResponse {
    const r = this.responses.at(-1);
    assert.ok(r, 'no response sent');
    return r;
  }
}

export function source(ip = '127.0.0.1', port = 5070, transport: SipSource['transport'] = 'udp'): SipSource {
  return { transport, ip, port, localIp: '127.0.0.1', localPort: 5060, connId: transport === 'udp' ? undefined : 'c1' };
}

let seq = 0;
/** Builds and parses a request. */
export function sipRequest(
  method: string,
  uri: string,
  headers: Record<string, string | string[]>,
  body = '',
): SipRequest {
  const b = Buffer.from(body, 'utf8');
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK${(++seq).toString(36)}x${Date.now().toString(36)};rport`,
    'Max-Forwards: 70',
  ];
  const base: Record<string, string | string[]> = { 'Call-ID': `c${seq}@t`, CSeq: `1 ${method}` };
  for (const [k, v] of Object.entries({ ...base, ...headers }))
    for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
  lines.push(`Content-Length: ${b.length}`, '', '');
  const r = parseMessage(Buffer.concat([Buffer.from(lines.join('\r\n')), b]));
  if (!r.ok) assert.fail(`test request does not parse: ${r.status} ${r.reason}`);
  return r.msg as SipRequest;
}

/** The Authorization value a client computes for a challenge. */
export function authorize(
  challenge: string,
  user: string,
  password: string,
  method: string,
  uri: string,
  nc = 1,
  opts: { alg?: DigestAlgorithm; noQop?: boolean; realm?: string } = {},
): string {
  const c = parseDigestHeader(challenge)!;
  const realm = opts.realm ?? c.params.get('realm')!;
  const nonce = c.params.get('nonce')!;
  const alg = (opts.alg ?? (c.params.get('algorithm') as DigestAlgorithm)) || 'MD5';
  const h1 = ha1(alg, user, realm, password);
  if (opts.noQop) {
    const r = digestResponse(alg, h1, nonce, method, uri);
    return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${r}", algorithm=${alg}`;
  }
  const ncs = nc.toString(16).padStart(8, '0');
  const cnonce = 'abc123';
  const r = digestResponse(alg, h1, nonce, method, uri, { qop: 'auth', nc: ncs, cnonce });
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${r}", algorithm=${alg}, qop=auth, nc=${ncs}, cnonce="${cnonce}"`;
}

export function header(m: { headers: { name: string; value: string }[] }, name: string): string | undefined {
  return getHeader(m, name);
}
