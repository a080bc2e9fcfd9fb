/**
 * The composition the lead pastes into src/server.ts (see the SIP-B report), replayed here: SipStack built from the
 * configuration options, SipServer with the API over SIP through gateway.message, services.sip set — then the
 * API over SIP (X-MVAPI) and verifyuser through the API, over real UDP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSocket } from 'node:dgram';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { parseMessage, type SipResponse } from '../../src/sip/message/index.js';

let t: TestServer;
let sip: SipServer | undefined;
let port = 0;

before(async () => {
  t = await startTestServer({ sipport: '0', sipbindaddr: '127.0.0.1', sipapi: 'true' });
  const services = t.srv.services;
  const gateway = t.srv.gateway;
  const opts = services.config.options;
  const dataDir = services.config.dataDir;
  const bans = services.bans;
  const log = services.log;
  // ---- the lines for src/server.ts (after the API listeners started) ----
  if (opts.usesip) {
    const tls = opts.usetls ? { cert: readFileSync(resolve(dataDir, opts.tlscert)), key: readFileSync(resolve(dataDir, opts.tlskey)) } : undefined;
    const stack = new SipStack({
      bindAddr: opts.sipbindaddr,
      udpPort: opts.sipport,
      tcpPort: opts.sipport,
      tlsPort: opts.usetls ? opts.siptlsport : undefined,
      wsPort: opts.sipwsport && !opts.usetls ? opts.sipwsport : undefined,
      wssPort: opts.sipwsport && opts.usetls ? opts.sipwsport : undefined,
      tls,
      maxMessageSize: opts.sipmaxmessage,
      maxConnections: opts.sipmaxconnections,
      isBanned: (ip) => bans.isBanned(ip),
      log,
    });
    sip = new SipServer(services, stack, { api: async (text, source) => (await gateway.message(text, source)).enc.body });
    (services as unknown as { sip?: SipServer }).sip = sip;
    for (const l of await sip.start()) services.listeners.push({ kind: `sip-${l.transport}`, address: l.address, port: l.port });
  }
  // ---- end ----
  port = services.listeners.find((l) => l.kind === 'sip-udp')?.port ?? 0;
  await services.users.create({ username: 'wally', password: 'wallypw' });
});
after(async () => {
  await sip?.stop();
  await t.stop();
});

async function exchange(text: string): Promise<SipResponse | null> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const lp = sock.address().port;
  return new Promise((res) => {
    const timer = setTimeout(() => (sock.close(), res(null)), 3000);
    sock.on('message', (m) => {
      const r = parseMessage(m);
      if (r.ok && r.msg.type === 'response' && r.msg.status >= 200) {
        clearTimeout(timer);
        sock.close();
        res(r.msg);
      }
    });
    sock.send(Buffer.from(text.replace(/LPORT/g, String(lp))), port, '127.0.0.1');
  });
}

test('wiring: SIP listeners are published, verifyuser works, the API answers over SIP (X-MVAPI)', async () => {
  assert.ok(port > 0, 'sip-udp listener published in services.listeners');
  assert.ok(t.srv.services.listeners.some((l) => l.kind === 'sip-tcp'));
  const v = await t.srv.gateway.handle(apiReq('verifyuser', { userusername: 'wally' }, apiSrc('127.0.0.1')));
  assert.equal(v.text, '1');
  const res = await exchange(
    [
      `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
      'Via: SIP/2.0/UDP 127.0.0.1:LPORT;branch=z9hG4bK-wiring1;rport',
      'From: <sip:x@127.0.0.1>;tag=w1',
      `To: <sip:127.0.0.1:${port}>`,
      'Call-ID: wiring-1',
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'X-MVAPI: apientry=verifyuser&userusername=wally',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  assert.equal(res?.status, 200);
  // the API's plain-text answer (text, then the OK line), as over TCP
  assert.equal(res!.body.toString(), '1\r\nOK');
});
