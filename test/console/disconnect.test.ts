/**
 * The live calls view's Disconnect button in a real browser against a real call: a sipp UAC (bob, digest) calls a
 * sipp UAS (carol's phone) through voxswitch's B2BUA; chromium shows the call in the Live page; clicking Disconnect
 * runs disccall: both sipp sides get a BYE (each scenario ends only after it), the CDR is written with the reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD } from '../helpers/server.js';
import { needTool } from '../helpers/tools.js';
import { startCallEnv, uas, uac, uacCsv, registerAt, waitFor, type CallEnv } from '../calls/helpers.js';

const SHOTS = join(process.cwd(), 'test-output', 'console');
const skip = needTool('chromium') || needTool('sipp');

let env: CallEnv;
let work: string;
let browser: Browser;
let page: Page;
let bob: number;

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'voxswitch-console-call-'));
  env = await startCallEnv();
  bob = (await env.services.users.create({ username: 'bob', password: 'bobpw' })).id;
  await env.services.users.create({ username: 'carol', password: 'carolpw' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1024, height: 800 } });
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
});
after(async () => {
  await browser?.close();
  await env?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a live sipp call ended with the Disconnect button: BYE to both sides, the CDR written', { skip }, async () => {
  await page.goto(env.t.url('/console/'));
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('admin (srvadmin)').waitFor();
  await page.getByRole('button', { name: 'Live', exact: true }).click();
  const calls = page.locator('#live-calls');
  await calls.getByText('none').waitFor();

  const callee = await uas(work, 'uas_answer.xml');
  registerAt(env, 'carol', callee.port);
  // the caller's scenario waits for the server's BYE (uac_auth_cut): it ends only when the call is cut
  const caller = uac(env, work, 'uac_auth_cut.xml', uacCsv(work, 'disc.csv', [['bob', 'bobpw', 'carol']]));
  const live = await waitFor(
    () => env.b2bua.live.list(),
    (l) => l.length === 1,
  );
  assert.equal(live.length, 1, 'the call is up');
  const row = calls.getByRole('row').filter({ hasText: 'bob' });
  await row.waitFor({ timeout: 5000 });
  assert.match((await row.textContent()) ?? '', /carol/);
  const id = (await row.getByRole('cell').first().textContent())!.trim();
  await page.screenshot({ path: join(SHOTS, 'live-call.png'), fullPage: true });

  await page.getByRole('button', { name: `Disconnect call ${id}` }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `call ${id} disconnected` })
    .waitFor();
  const [a, b] = await Promise.all([caller, callee.done]);
  assert.equal(a.code, 0, `the caller got its BYE: ${a.out.slice(-1500)}`);
  assert.equal(b.code, 0, `the callee got its BYE: ${b.out.slice(-1500)}`);
  const cdrs = await waitFor(
    () => env.services.storage.db.selectFrom('tb_cdrs').selectAll().where('userid', '=', bob).execute(),
    (r) => r.some((x) => x.callid === id),
  );
  const cdr = cdrs.find((x) => x.callid === id);
  assert.ok(cdr, `a CDR for ${id}: ${JSON.stringify(cdrs)}`);
  assert.equal(cdr.reason, 'disconnected by API (disccall)');
  assert.equal(cdr.callee, 'carol');
  // the live view follows: the call is gone
  await calls.getByText('none').waitFor({ timeout: 5000 });
  assert.equal(env.b2bua.live.list().length, 0);
});
