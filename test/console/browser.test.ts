/**
 * The web console in a real browser (Debian's chromium driven by playwright-core): log in, send version and
 * balance, create a user and give credit (the ledger shows it), generate an example and run it with curl, see a
 * phone registered by sipp appear live, import a tariff CSV, open the charts; names and CDR fields with markup stay text. Screenshots
 * go to test-output/console/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';
import { needTool, toolPath } from '../helpers/tools.js';
import { runTool } from '../helpers/processes.js';

const run = promisify(execFile);
const SHOTS = join(process.cwd(), 'test-output', 'console');
const skip = needTool('chromium') || needTool('curl') || needTool('sipp');
const CHROMIUM = '/usr/bin/chromium';
const XSS = '<img src=x onerror="window.__pwned=1">';

let ts: TestServer;
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  // addcredit is a req_ip=1 command: the console runs it only from an address the operator listed
  ts = await startTestServer({ apiv2ipauth: '127.0.0.1', authfailban: '0' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
});
after(async () => {
  await browser?.close();
  await ts?.stop();
});

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const nav = (title: string) => page.getByRole('button', { name: title, exact: true }).click();

async function send(command: string, params = '', format = 'text'): Promise<string> {
  await page.getByLabel('Command', { exact: true }).fill(command);
  await page.getByLabel('Parameters').fill(params);
  await page.getByLabel('Answer format').selectOption(format);
  await page.getByRole('button', { name: 'Send' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `${command}:` })
    .first()
    .waitFor();
  return (await page.getByLabel('Answer', { exact: true }).textContent()) ?? '';
}

test('the web console in chromium', { skip }, async (t) => {
  const s = ts.srv.services;
  await page.goto(ts.url('/console/'));

  await t.test('a wrong password is refused, the right one logs in', async () => {
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Log-in refused: authentication failed').waitFor();
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await shot('login');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('admin (srvadmin)').waitFor();
    const cookies = await page.context().cookies();
    const c = cookies.find((x) => x.name === 'vxsession')!;
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is not readable by script');
  });

  await t.test('version and balance through the console; the history remembers them', async () => {
    const v = await send('version');
    assert.match(v, new RegExp(s.version.replace(/\./g, '\\.')));
    const b = await send('balance', '', 'json');
    assert.match(b, /"status":\s*"OK"|"code":\s*200/);
    await shot('console');
    const hist = await page.getByRole('list', { name: 'History' }).textContent();
    assert.match(hist ?? '', /balance/);
    assert.match(hist ?? '', /version/);
  });

  await t.test('create a user and give credit with a reason: the ledger has the entry', async () => {
    await nav('Manage');
    const create = page.getByRole('form', { name: 'New user' });
    await create.getByLabel('User name').fill('carla');
    await create.getByLabel('Password').fill('Carla-pw-2468');
    await create.getByLabel('Full name').fill(XSS);
    await create.getByRole('button', { name: 'Create' }).click();
    await create.getByRole('status').filter({ hasText: /^OK/ }).waitFor();
    const credit = page.getByRole('form', { name: 'Credit (through the ledger)' });
    await credit.getByLabel('User name').fill('carla');
    await credit.getByLabel('Amount (negative to correct)').fill('12.5');
    await credit.getByLabel('Reason').fill('browser test top-up');
    await credit.getByRole('button', { name: 'Add credit' }).click();
    await credit
      .getByRole('status')
      .filter({ hasText: /^OK: added 12\.5/ })
      .waitFor();
    await shot('manage');
    const u = await s.users.byUsername('carla');
    assert.ok(u);
    assert.equal(u.name, XSS, 'stored as given');
    const rows = await s.storage.db.selectFrom('tb_ledger').selectAll().where('userid', '=', u.id).execute();
    const entry = rows.find((r) => r.reason === 'addcredit: browser test top-up');
    assert.ok(entry, JSON.stringify(rows));
    assert.equal(Number(entry.amount), 12_500_000);
    assert.equal((await s.ledger.balance(u.id))?.credit, 12_500_000);
  });

  await t.test('a tariff CSV imported through the form: progress shown, the API rates with the new price', async () => {
    await nav('Manage');
    const f = page.getByRole('form', { name: 'Import a tariff CSV' });
    const rows = ['prefix,destination,price,connectfee,minduration,increment,currency'];
    for (let i = 0; i < 2000; i++) rows.push(`4479${String(i).padStart(4, '0')},Test ${i},0.0${i % 9},0,1,1,USD`);
    rows.push('4477,Browser Land,0.4321,0,1,1,USD');
    const buffer = Buffer.from(`${rows.join('\n')}\n`);
    await f.getByLabel('CSV file').setInputFiles({ name: 'rates.csv', mimeType: 'text/csv', buffer });
    await f.getByRole('button', { name: 'Import' }).click();
    await f
      .getByRole('status')
      .filter({ hasText: /^OK: imported 2001 rates into plan default/ })
      .waitFor({ timeout: 20_000 });
    assert.equal(await f.getByLabel('Import progress').evaluate((e) => (e as unknown as { value: number }).value), 100);
    await shot('tariffs');
    const api = ts.url('/mvapireq/?apientry=rating&authid=carla&authpwd=Carla-pw-2468&bnum=4477123&format=json');
    const r = await run('curl', ['-sS', api]);
    assert.match(r.stdout, /0\.4321/);
    assert.match(r.stdout, /Browser Land/);
    // a bad row: nothing imported, the line named
    const bad = Buffer.from(
      'prefix,destination,price,connectfee,minduration,increment,currency\n4478,X,abc,0,1,1,USD\n',
    );
    await f.getByLabel('CSV file').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: bad });
    await f.getByRole('button', { name: 'Import' }).click();
    await f
      .getByRole('status')
      .filter({ hasText: /^ERROR: nothing imported \(1 bad rows\) line 2/ })
      .waitFor();
    const row = await s.storage.db.selectFrom('tb_tariffs').select('prefix').where('prefix', '=', '4478').execute();
    assert.deepEqual(row, []);
  });

  await t.test('an example generated for balance runs with curl against the server', async () => {
    await nav('API examples');
    await page.getByLabel('Command', { exact: true }).selectOption('balance');
    await page.getByLabel('authid (user name)').fill('carla');
    await page.getByLabel('Password (for authmd5; stays in this page)').fill('Carla-pw-2468');
    await page.getByRole('button', { name: 'Generate' }).click();
    const fig = page.locator('figure.example').filter({ hasText: 'HTTP GET (curl)' });
    const line = (await fig.locator('pre').textContent()) ?? '';
    assert.match(line, /authmd5=[0-9a-f]{32}&authsalt=[0-9a-f]{24}/);
    await shot('examples');
    const r = await run('bash', ['-c', `${line} -sS`]);
    assert.match(r.stdout, /12\.5/);
    assert.match(r.stdout, /OK/);
    // the JSON body form too (its own salt)
    const json = (await page
      .locator('figure.example')
      .filter({ hasText: 'HTTP POST JSON body' })
      .locator('pre')
      .textContent())!;
    const j = await run('bash', ['-c', `${json} -sS`]);
    assert.match(j.stdout, /12\.5/);
  });

  await t.test('a phone registered by sipp appears in the live view', async () => {
    const sipPort = s.listeners.find((l) => l.kind === 'sip udp')!.port;
    await nav('Live');
    await page.locator('#live-registrations').getByText('none').or(page.locator('#live-registrations table')).waitFor();
    // sipp registers carla with digest (REGISTER → 401 → REGISTER with credentials → 200)
    const csv = join(SHOTS, 'carla.csv');
    writeFileSync(csv, 'SEQUENTIAL\ncarla;[authentication username=carla password=Carla-pw-2468]\n');
    const reg = await runTool(toolPath('sipp'), [
      `127.0.0.1:${sipPort}`,
      '-sf',
      join(process.cwd(), 'test/sip/scenarios/register_auth.xml'),
      '-inf',
      csv,
      '-m',
      '1',
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '15s',
      '-timeout_error',
    ]);
    assert.equal(reg.code, 0, reg.out);
    await page.locator('#live-registrations table').getByText('carla').first().waitFor({ timeout: 5000 });
    await shot('live');
  });

  await t.test('CDR fields with markup are shown as text; the charts draw', async () => {
    const now = Date.now();
    const u = (await s.users.byUsername('admin'))!;
    await s.storage.db
      .insertInto('tb_cdrs')
      .values({
        callid: 'xss-cdr-1',
        caller: XSS,
        callee: '<script>window.__pwned=true</script>4930123',
        userid: u.id,
        route: '<b>gw</b>',
        start_at: now - 60_000,
        connect_at: now - 50_000,
        end_at: now - 10_000,
        duration: 40,
        billed: 60,
        cost: 250_000,
        currency: 'EUR',
        reason: 'normal',
        leg: '',
        created_at: now,
      })
      .execute();
    await nav('CDRs');
    await page.getByRole('cell', { name: XSS }).waitFor();
    assert.equal(await page.locator('main img, main script, main b').count(), 0, 'no injected element');
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    await shot('cdrs');
    await nav('Charts');
    await page.locator('figure.chart canvas').first().waitFor();
    assert.equal(await page.locator('figure.chart').count(), 3);
    await page.getByRole('cell', { name: '4930' }).waitFor();
    await shot('charts');
    assert.equal(await page.evaluate('window.__pwned'), undefined);
  });

  await t.test('log-out ends the session: the API answers 401 afterwards', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    const status = await page.evaluate(() => fetch('/console/api/commands').then((r) => r.status));
    assert.equal(status, 401);
  });
});
