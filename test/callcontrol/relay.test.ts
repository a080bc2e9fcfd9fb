/**
 * callback/p2p through the RTP relay (rtprelay=always): both parties are given relay addresses in the SDP (sipp
 * checks the offer B gets and the answer A gets point at relay ports), RTP and RTCP sent to the relay by one party's
 * media address reach the other's, and the relay ports are freed when the call ends.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';
import { CallControl } from '../../src/sip/callcontrol/controller.js';
import { needTool } from '../helpers/tools.js';
import { eventually } from '../helpers/wait.js';
import { TestRouter } from './router.js';
import { uas } from './sipp.js';

const NO_SIPP = needTool('sipp');
let t: TestServer;
let cc: CallControl;
let work: string;
const router = new TestRouter(() => t.srv.services);

before(async () => {
  t = await startTestServer({ rtprelay: 'always', rtpportmin: '29500', rtpportmax: '29599', defaultcountrycode: '1' });
  work = mkdtempSync(join(tmpdir(), 'voxswitch-3pcc-relay-'));
  const r = await t.srv.gateway.handle(
    req(
      'newuseri',
      { u_username: 'rina', u_password: 'rinapw', u_credit: '5.00', u_currency: 'USD' },
      src('127.0.0.1'),
    ),
  );
  assert.ok(r.ok, r.text);
  const csv = 'prefix,destination,price,connectfee,minduration,increment,currency\n1555,Test,0.60,0,1,1,USD\n';
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  cc = new CallControl({
    services: t.srv.services,
    sip: t.srv.services.sip!,
    live: t.srv.services.liveCalls,
    routing: router,
    media: t.srv.services.calls!.media,
  });
  t.srv.services.callControl = cc;
});
after(async () => {
  await cc?.stop();
  await t?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function bound(port: number): Promise<{ s: Socket; got: Array<{ data: string; port: number }> }> {
  const s = createSocket('udp4');
  const got: Array<{ data: string; port: number }> = [];
  s.on('message', (m, r) => got.push({ data: m.toString(), port: r.port }));
  await new Promise<void>((res) => s.bind(port, '127.0.0.1', () => res()));
  return { s, got };
}

test(
  'p2p with rtprelay=always: SDP points at the relay, RTP and RTCP cross it, ports freed at the end',
  { skip: NO_SIPP },
  async () => {
    const media = t.srv.services.calls!.media;
    // the parties' media addresses as their SDP announces them (RTP, and RTCP on the port above)
    const [aRtp, aRtcp, bRtp, bRtcp] = await Promise.all([bound(29410), bound(29411), bound(29420), bound(29421)]);
    try {
      const a = await uas(work, 'a_relayed.xml');
      const b = await uas(work, 'b_relayed.xml');
      router.routes.set('+15550041', [{ name: 'gwRelA', port: a.port }]);
      router.routes.set('+15550042', [{ name: 'gwRelB', port: b.port }]);
      const r = await t.srv.gateway.handle(
        req(
          'p2p',
          { authkey: API_KEY, authid: 'rina', authpwd: 'rinapw', bnum: '+15550041', cnum: '+15550042' },
          src('203.0.113.9'),
        ),
      );
      assert.equal(r.ok, true, r.text);
      const callid = String(r.fields?.callid);
      await eventually(() => cc.get(callid)?.state === 'connected', 'bridged', 10_000);
      const session = media.session(cc.get(callid)!)!;
      assert.ok(session, 'the call has a relay session');
      const [toA, toB] = [session.ports('a')[0]!, session.ports('b')[0]!];
      assert.ok(toA >= 29500 && toA <= 29599 && toB >= 29500 && toB <= 29599, `relay ports ${toA}, ${toB}`);
      aRtp.s.send('rtp from A', toA, '127.0.0.1');
      await eventually(() => bRtp.got.length > 0, 'B got the RTP');
      assert.deepEqual(bRtp.got[0], { data: 'rtp from A', port: toB });
      bRtp.s.send('rtp from B', toB, '127.0.0.1');
      await eventually(() => aRtp.got.length > 0, 'A got the RTP');
      assert.deepEqual(aRtp.got[0], { data: 'rtp from B', port: toA });
      aRtcp.s.send('rtcp from A', toA + 1, '127.0.0.1');
      await eventually(() => bRtcp.got.length > 0, 'B got the RTCP');
      assert.deepEqual(bRtcp.got[0], { data: 'rtcp from A', port: toB + 1 });
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.code, 0, `sipp A (its ACK must name a relay port): ${ra.out}`);
      assert.equal(rb.code, 0, `sipp B (its INVITE must name a relay port): ${rb.out}`);
      await eventually(() => media.size === 0, 'the relay session was released');
    } finally {
      for (const x of [aRtp, aRtcp, bRtp, bRtcp]) x.s.close();
    }
  },
);
