/** A caller that vanishes (never sends BYE): the max call age (here 2 s) ends the call with BYE both legs and bills it. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCallEnv, uas, uac, uacCsv, registerAt, waitFor, type CallEnv } from './helpers.js';
import { skipWithout } from '../helpers/tools.js';

let env: CallEnv;
let work: string;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-vanish-'));
  env = await startCallEnv({ maxCallSeconds: 2 });
  await env.services.users.create({ username: 'gina', password: 'ginapw1' });
  await env.services.users.create({ username: 'hank', password: 'hankpw1' });
});
after(async () => {
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('max call age: a call whose caller never hangs up is ended after maxCallSeconds (BYE both legs, CDR "max call age reached")', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'hank', callee.port);
  const [a, b] = await Promise.all([
    uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'v.csv', [['gina', 'ginapw1', 'hank']])),
    callee.done,
  ]);
  assert.equal(a.code, 0, a.out.slice(-1500));
  assert.equal(b.code, 0, b.out.slice(-1500));
  const cdrs = await waitFor(
    () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('callee', '=', 'hank').execute(),
    (r) => r.length > 0,
  );
  assert.equal(cdrs.length, 1);
  assert.equal(cdrs[0]!.duration, 2);
  assert.equal(cdrs[0]!.reason, 'max call age reached');
  assert.equal(await env.sip.status('gina'), 1);
  assert.equal(env.b2bua.live.list().length, 0);
});
