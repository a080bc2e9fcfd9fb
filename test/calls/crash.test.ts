/**
 * SIGKILL of a server in the middle of a real SIP call (sipp caller → B2BUA → sipp gateway): after the restart,
 * recover() bills the call from its last refresh, once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import { SIPP, SCEN, uacCsv, setRates, sleep } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';
import { startListening, type Listening } from '../helpers/processes.js';

const UNIT = 1_000_000;

test('SIGKILL mid-call (real SIP call): the restarted server bills the call once from its last known state', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const dir = mkdtempSync(join(tmpdir(), 'voxswitch-crashsip-'));
  const work = mkdtempSync(join(tmpdir(), 'voxswitch-crashsipw-'));
  const kids: Array<ReturnType<typeof spawn>> = [];
  let gw: Listening | undefined;
  try {
    const a = await startTestServer({ usesip: 'false' }, dir);
    const kim = (await a.srv.services.users.create({ username: 'kim', password: 'kimpw12' })).id;
    await a.srv.services.ledger.post({ userId: kim, amount: 100 * UNIT, reason: 'test' });
    await setRates(a.srv.services, (await a.srv.services.ledger.balance(kim))!.currency, [
      { prefix: '4900', price: 60 * UNIT },
    ]);
    await a.stop();

    gw = await startListening(
      SIPP,
      (port) => [
        '-sf',
        join(SCEN, 'uas_answer.xml'),
        '-i',
        '127.0.0.1',
        '-p',
        String(port),
        '-m',
        '1',
        '-nostdin',
        '-t',
        'u1',
      ],
      { cwd: work },
    );
    const gwPort = gw.port;
    const child = spawn(
      process.execPath,
      [join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js'), dir, String(gwPort)],
      { env: { ...process.env, CRASH_CHILD: 'sip' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    kids.push(child);
    let out = '';
    let port = 0;
    const connected = new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), 20000);
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /PORT (\d+)/.exec(out);
        if (m && !port) {
          port = Number(m[1]);
          const caller = spawn(
            SIPP,
            [
              '127.0.0.1:' + port,
              '-sf',
              join(SCEN, 'uac_auth_cut.xml'),
              '-inf',
              uacCsv(work, 'k.csv', [['kim', 'kimpw12', '4900999']]),
              '-m',
              '1',
              '-i',
              '127.0.0.1',
              '-nostdin',
              '-t',
              'u1',
            ],
            { cwd: work, stdio: 'ignore' },
          );
          kids.push(caller);
        }
        if (out.includes('CONNECTED')) {
          clearTimeout(timer);
          res(true);
        }
      });
      child.stderr!.on('data', (d) => (out += d));
      child.on('exit', () => res(false));
    });
    assert.ok(await connected, `the child server / call did not come up: ${out.slice(-500)}`);
    const t0 = Date.now();
    await sleep(2600);
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    const elapsed = (Date.now() - t0) / 1000;

    const b = await startTestServer({ usesip: 'false' }, dir);
    try {
      // the server recovers leftover calls as it starts: the killed call is billed and its row gone
      const left = await b.srv.services.storage.db.selectFrom('tb_livecalls').selectAll().execute();
      assert.equal(left.length, 0, 'the killed call was recovered at start');
      const live = new LiveCalls(b.srv.services);
      const cdrs = await b.srv.services.storage.db
        .selectFrom('tb_cdrs')
        .selectAll()
        .where('userid', '=', kim)
        .execute();
      assert.equal(cdrs.length, 1);
      const d = cdrs[0]!.duration;
      assert.ok(d >= 2 && d <= Math.ceil(elapsed), `duration ${d} s, killed after ${elapsed} s (refresh every 200 ms)`);
      assert.equal(cdrs[0]!.callee, '4900999');
      assert.equal(cdrs[0]!.route, 'gw:gwK');
      assert.equal(Number(cdrs[0]!.cost), d * UNIT);
      assert.equal((await b.srv.services.ledger.balance(kim))!.credit, (100 - d) * UNIT);
      assert.deepEqual(await live.recover(), { closed: 0, charged: 0 }, 'a second start charges nothing');
    } finally {
      await b.stop();
    }
  } finally {
    for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
    gw?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});
