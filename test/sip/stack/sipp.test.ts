// Real-peer tests with SIPp (Debian sip-tester) on 127.0.0.1: its built-in UAC against an echo UAS
// built on the stack (UDP and TCP), and the stack as UAC against SIPp's built-in UAS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResponse, generateCallId, generateTag } from '../../../src/sip/message/index.js';
import type { SipRequest, SipResponse } from '../../../src/sip/message/index.js';
import { SipStack } from '../../../src/sip/stack.js';
import { needTool, toolPath } from '../../helpers/tools.js';
import { startListening } from '../../helpers/processes.js';

const SIPP = toolPath('sipp');
const skip = needTool('sipp');

let stack: SipStack;
let udpPort = 0;
let tcpPort = 0;
let dir = '';
let acks = 0;
let byes = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sipa-sipp-'));
  stack = new SipStack({ bindAddr: '127.0.0.1', udpPort: 0, tcpPort: 0, maxMessageSize: 65535, maxConnections: 100 });
  stack.onRequest((req, tx, src) => {
    if (req.method === 'INVITE') {
      const toTag = generateTag();
      tx.respond(createResponse(req, 180, undefined, { toTag }));
      const host = src.localIp;
      tx.respond(
        createResponse(req, 200, undefined, {
          toTag,
          headers: [{ name: 'Contact', value: `<sip:echo@${host}:${src.localPort};transport=${src.transport}>` }],
          body: Buffer.from(
            `v=0\r\no=- 1 1 IN IP4 ${host}\r\ns=-\r\nc=IN IP4 ${host}\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n`,
          ),
          contentType: 'application/sdp',
        }),
      );
      return;
    }
    if (req.method === 'BYE') byes++;
    tx.respond(createResponse(req, 200));
  });
  stack.onAck(() => acks++);
  const l = await stack.start();
  udpPort = l.find((x) => x.transport === 'udp')!.port;
  tcpPort = l.find((x) => x.transport === 'tcp')!.port;
});

after(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function runSipp(args: string[], timeoutMs = 30000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(
      SIPP,
      [...args, '-nostdin', '-timeout', '20s', '-timeout_error'],
      { cwd: dir, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, out: String(stdout) + String(stderr) });
      },
    );
  });
}

test('SIPp uac (UDP): 20 INVITE/ACK/BYE calls against the stack all succeed', { skip }, async () => {
  const a0 = acks;
  const b0 = byes;
  const r = await runSipp([
    '-sn',
    'uac',
    `127.0.0.1:${udpPort}`,
    '-i',
    '127.0.0.1',
    '-m',
    '20',
    '-r',
    '100',
    '-d',
    '10',
  ]);
  assert.equal(r.code, 0, r.out.slice(-2000));
  assert.equal(acks - a0, 20, 'every 2xx ACK reached onAck');
  assert.equal(byes - b0, 20);
});

test('SIPp uac (TCP, one connection): 20 calls succeed', { skip }, async () => {
  const b0 = byes;
  const r = await runSipp([
    '-sn',
    'uac',
    `127.0.0.1:${tcpPort}`,
    '-i',
    '127.0.0.1',
    '-t',
    't1',
    '-m',
    '20',
    '-r',
    '100',
    '-d',
    '10',
  ]);
  assert.equal(r.code, 0, r.out.slice(-2000));
  assert.equal(byes - b0, 20);
});

test('stack as UAC against SIPp uas (UDP): INVITE → 180/200, ACK, BYE → 200', { skip }, async () => {
  const uas = await startListening(
    SIPP,
    (p) => [
      '-sn',
      'uas',
      '-i',
      '127.0.0.1',
      '-p',
      String(p),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '20s',
      '-timeout_error',
    ],
    { cwd: dir },
  );
  const port = uas.port;
  try {
    const local = stack.localAddress('udp')!;
    const callId = generateCallId();
    const fromTag = generateTag();
    const mk = (method: string, cseq: number, toTag?: string): SipRequest => ({
      type: 'request',
      method,
      uri: `sip:service@127.0.0.1:${port}`,
      version: 'SIP/2.0',
      headers: [
        { name: 'From', value: `<sip:stack@${local.host}:${local.port}>;tag=${fromTag}` },
        { name: 'To', value: `<sip:service@127.0.0.1:${port}>` + (toTag ? ';tag=' + toTag : '') },
        { name: 'Call-ID', value: callId },
        { name: 'CSeq', value: `${cseq} ${method}` },
        { name: 'Contact', value: `<sip:stack@${local.host}:${local.port}>` },
      ],
      body: Buffer.alloc(0),
    });
    const target = { transport: 'udp' as const, host: '127.0.0.1', port };
    const inv = stack.request(mk('INVITE', 1), target);
    const events: string[] = [];
    inv.on('provisional', (r: SipResponse) => events.push(String(r.status)));
    const ok = await new Promise<SipResponse>((resolve, reject) => {
      inv.once('final', resolve);
      inv.once('timeout', () => reject(new Error('INVITE timed out')));
    });
    assert.equal(ok.status, 200);
    assert.ok(events.includes('180'), 'got ' + events.join(','));
    const toTag = ok.core!.to!.tag!;
    stack.request(mk('ACK', 1, toTag), target);
    const bye = stack.request(mk('BYE', 2, toTag), target);
    const byeRes = await new Promise<SipResponse>((resolve, reject) => {
      bye.once('final', resolve);
      bye.once('timeout', () => reject(new Error('BYE timed out')));
    });
    assert.equal(byeRes.status, 200);
    const done = await uas.done;
    assert.equal(done.code, 0, 'SIPp uas saw a complete successful call: ' + done.out.slice(-1500));
  } finally {
    uas.stop();
  }
});
