/**
 * In-dialog requests through the dialog table: an INFO (DTMF relay) from the caller is passed on to the callee in
 * its dialog, body unchanged, and the callee's 200 comes back; the call then ends normally with one CDR.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCallEnv, uas, uac, uacCsv, registerAt, sleep, type CallEnv } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';

let env: CallEnv;
let work: string;
let alice: number;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-indialog-'));
  env = await startCallEnv();
  alice = (await env.services.users.create({ username: 'alice', password: 'alicepw' })).id;
  await env.services.users.create({ username: 'bob', password: 'bobpw' });
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('INFO inside a call reaches the other party through the B2BUA and its 200 comes back', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_info.xml');
  registerAt(env, 'bob', callee.port);
  const caller = uac(env, work, 'uac_info.xml', uacCsv(work, 'info.csv', [['alice', 'alicepw', 'bob']]));
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(a.code, 0, 'caller sipp: ' + a.out.slice(-1500));
  assert.equal(b.code, 0, 'callee sipp: ' + b.out.slice(-1500));
  let cdrs: Array<{ reason: string }> = [];
  for (let i = 0; i < 50 && !cdrs.length; i++) {
    cdrs = await env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', alice).execute();
    if (!cdrs.length) await sleep(100);
  }
  assert.equal(cdrs.length, 1);
  assert.match(cdrs[0]!.reason, /^normal/);
  assert.equal(env.sip.dialogs.size, 0, 'both dialogs left the table');
});
