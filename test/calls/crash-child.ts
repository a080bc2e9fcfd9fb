/**
 * Child process of the SIGKILL tests (livecalls.test.ts, crash.test.ts). Does nothing unless CRASH_CHILD is set
 * (node --test also loads this file).
 *  CRASH_CHILD=live <dir>: opens the server on a data dir, starts one connected call through LiveCalls (reserve +
 *    connect, refresh every 200 ms), prints CONNECTED and waits to be killed.
 *  CRASH_CHILD=sip <dir> <gwport>: a server with the B2BUA (live-call refresh every 200 ms) routing 49… to a gateway
 *    on 127.0.0.1:<gwport>; prints "PORT <udp>" when listening, then CONNECTED once a call is connected.
 */
import { startTestServer } from '../helpers/server.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { B2bua } from '../../src/sip/calls/b2bua.js';
import { TestRouter } from './helpers.js';

const mode = process.env.CRASH_CHILD;
if (mode === 'live') {
  const dir = process.argv[2]!;
  const t = await startTestServer({ usesip: 'false' }, dir);
  const s = t.srv.services;
  const u = (await s.users.byUsername('dan'))!;
  const q = await s.rating.quote({ id: u.id, country: '' }, '4900555');
  const live = new LiveCalls(s, { heartbeatMs: 200 });
  s.liveCalls = live;
  live.start();
  const r = await live.reserve({
    callid: 'crash-call-1',
    userId: u.id,
    caller: 'dan',
    callee: q.number,
    route: 'gw:test',
    rate: q.rate,
  });
  if (!r.ok) throw new Error(r.reason);
  await live.connected('crash-call-1');
  process.stdout.write('CONNECTED\n');
  setInterval(() => undefined, 1000);
} else if (mode === 'sip') {
  const dir = process.argv[2]!;
  const gwPort = Number(process.argv[3]);
  const t = await startTestServer({ usesip: 'false', authfailban: '0' }, dir);
  const s = t.srv.services;
  const o = s.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
  });
  const sip = new SipServer(s, stack);
  const port = (await sip.start()).find((x) => x.transport === 'udp')!.port;
  s.liveCalls = new LiveCalls(s, { heartbeatMs: 200 });
  const router = new TestRouter(s);
  router.gateways = [
    { id: 1, name: 'gwK', host: '127.0.0.1', port: gwPort, transport: 'udp', username: '', password: '', number: '' },
  ];
  const b = new B2bua({ services: s, sip, router, live: s.liveCalls });
  b.start();
  process.stdout.write(`PORT ${port}\n`);
  const timer = setInterval(() => {
    if (b.live.stats().connected > 0) {
      clearInterval(timer);
      process.stdout.write('CONNECTED\n');
    }
  }, 50);
  setInterval(() => undefined, 1000);
}
