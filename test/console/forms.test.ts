/**
 * The web console's management pages in a real browser (Debian's chromium driven by playwright-core) on a phone-sized
 * viewport (390 px): the DID pool (add a range, assign, free, delete), gateways (add, edit, delete through the API
 * commands), tb_api rules (save, apireload, delete; a refused template is shown and not stored), the live queue view,
 * a form used by keyboard only. Screenshots go to test-output/console/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, API_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { curl } from '../helpers/clients.js';
import { needTool } from '../helpers/tools.js';

const SHOTS = join(process.cwd(), 'test-output', 'console');
const skip = needTool('chromium') || needTool('curl');
const WIDTH = 390;

let ts: TestServer;
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  ts = await startTestServer({ authfailban: '0', apilimitip: '0', apilimituser: '0' });
  await ts.srv.services.users.create({ username: 'dora', password: 'Dora-pw-1357' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: WIDTH, height: 844 } });
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
  page.on('dialog', (d) => void d.accept());
});
after(async () => {
  await browser?.close();
  await ts?.stop();
});

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const nav = (title: string) => page.getByRole('button', { name: title, exact: true }).click();
const ok = (form: string, text: RegExp) =>
  page.getByRole('form', { name: form }).getByRole('status').filter({ hasText: text }).waitFor();

/** No part of the page is wider than the phone's screen (tables scroll inside their own box). */
async function fitsThePhone(): Promise<void> {
  const wide = (await page.evaluate('document.documentElement.scrollWidth')) as number;
  assert.ok(wide <= 390, `the page is ${wide} px wide on a 390 px screen`);
}

test('management pages in chromium on a phone-sized screen', { skip }, async (t) => {
  const s = ts.srv.services;
  await page.goto(ts.url('/console/'));
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('admin (srvadmin)').waitFor();

  await t.test('DIDs: add a range, assign one to a user, free it, delete a free one', async () => {
    await nav('DIDs');
    const add = page.getByRole('form', { name: 'Add numbers' });
    await add.getByLabel('Or a range from').fill('3612300');
    await add.getByLabel('Count').fill('3');
    await add.getByRole('button', { name: 'Add' }).click();
    await ok('Add numbers', /^OK: added 3 number\(s\)/);
    const pool = page.locator('#did-pool');
    await pool.getByRole('cell', { name: '3612302', exact: true }).waitFor();
    const assign = page.getByRole('form', { name: 'Assign a number' });
    await assign.getByLabel('Number').fill('3612301');
    await assign.getByLabel('User name').fill('dora');
    await assign.getByRole('button', { name: 'Assign' }).click();
    await ok('Assign a number', /^OK: number 3612301 assigned to dora/);
    await pool.getByRole('cell', { name: 'dora', exact: true }).waitFor();
    assert.equal((await s.users.byUsername('dora'))?.did, '3612301');
    await fitsThePhone();
    await shot('dids');
    // an assigned number cannot be given again: the refusal is shown
    await assign.getByRole('button', { name: 'Assign' }).click();
    await ok('Assign a number', /^ERROR: number 3612301 is assigned/);
    await page.getByRole('button', { name: 'Free number 3612301' }).click();
    await page.getByRole('status').filter({ hasText: 'OK: number 3612301 is free again' }).waitFor();
    await page.getByRole('button', { name: 'Delete number 3612302' }).click();
    await page.getByRole('status').filter({ hasText: 'OK: number 3612302 removed from the pool' }).waitFor();
    const rows = await s.numbers.listNumbers();
    assert.deepEqual(
      rows.map((r) => [r.number, r.status]),
      [
        ['3612300', 'free'],
        ['3612301', 'free'],
      ],
    );
  });

  await t.test('Gateways: add, edit (only the port changes), delete', async () => {
    await nav('Gateways');
    const f = page.getByRole('form', { name: 'Add a gateway' });
    await f.getByLabel('Name', { exact: true }).fill('carrier1');
    await f.getByLabel('Host (IP or name)').fill('198.51.100.30');
    await f.getByLabel('Password', { exact: true }).fill('trunk-pw');
    await f.getByLabel('Prefix served (empty: all)').fill('36');
    await f.getByRole('button', { name: 'Add gateway' }).click();
    await ok('Add a gateway', /^OK: gateway carrier1 added/);
    await page.locator('#gateway-list').getByRole('cell', { name: 'carrier1', exact: true }).waitFor();
    // a bad value: the form says why, nothing is stored
    await f.getByLabel('Name', { exact: true }).fill('carrier2');
    await f.getByLabel('Host (IP or name)').fill('bad host!');
    await f.getByRole('button', { name: 'Add gateway' }).click();
    await ok('Add a gateway', /^ERROR: host: "bad host!" is neither an IP address nor a host name/);
    await page.getByRole('button', { name: 'Edit gateway carrier1' }).click();
    const e = page.getByRole('form', { name: 'Edit gateway' });
    assert.equal(await e.getByLabel('Host (IP or name)').inputValue(), '198.51.100.30');
    await e.getByLabel('Port (empty: 5060 or DNS)').fill('5090');
    await e.getByRole('button', { name: 'Save changes' }).click();
    await page
      .getByRole('form', { name: 'Add a gateway' })
      .getByRole('status')
      .filter({ hasText: /^OK: gateway carrier1 changed \(id \d+, 198\.51\.100\.30:5090\/udp, prefix 36/ })
      .waitFor();
    const g = (await s.routing.gateway('carrier1'))!;
    assert.equal(g.port, 5090);
    assert.equal(g.prefix, '36');
    assert.ok(g.passwordEnc, 'the password was not sent, so it stays');
    assert.equal(await s.routing.gateway('carrier2'), undefined);
    await fitsThePhone();
    await shot('gateways');
    await page.getByRole('button', { name: 'Delete gateway carrier1' }).click();
    await page.getByRole('status').filter({ hasText: 'OK: gateway carrier1 deleted' }).waitFor();
    assert.equal((await s.routing.gateways()).length, 0);
  });

  await t.test(
    'API rules: save a rule, apply it with apireload, delete it; a refused template is not stored',
    async () => {
      const version = () =>
        curl([ts.url(`/mvapireq/?apientry=version&authkey=${API_KEY}&authid=admin&authpwd=${ADMIN_PASSWORD}`)]);
      assert.match((await version()).body, /OK/);
      await nav('API rules');
      const f = page.getByRole('form', { name: 'Add or change a rule' });
      await f.getByLabel('API name').fill('version');
      await f.getByLabel('Who may call (req_user)').selectOption('2');
      await f.getByRole('button', { name: 'Save rule' }).click();
      await ok('Add or change a rule', /^OK: tb_api rule version added; apireload applies it/);
      await page.locator('#api-rules').getByRole('cell', { name: 'version', exact: true }).waitFor();
      await page.getByRole('button', { name: 'Apply the rules (apireload)' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /^OK: tb_api reloaded: 1 entries/ })
        .waitFor();
      assert.match((await version()).body, /ERROR/);
      await f.getByLabel('API name').fill('peek');
      await f.getByLabel('Custom SQL (a new API)').fill('SELECT password FROM tb_users');
      await f.getByRole('button', { name: 'Save rule' }).click();
      await ok('Add or change a rule', /^ERROR: /);
      const rows = await s.storage.db.selectFrom('tb_api').select('fname').execute();
      assert.deepEqual(rows, [{ fname: 'version' }]);
      await fitsThePhone();
      await shot('apirules');
      await page.getByRole('button', { name: 'Delete rule version' }).click();
      await page.getByRole('status').filter({ hasText: 'OK: tb_api rule version deleted' }).waitFor();
      await page.getByRole('button', { name: 'Apply the rules (apireload)' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /^OK: tb_api reloaded: 0 entries/ })
        .waitFor();
      assert.match((await version()).body, /OK/);
    },
  );

  await t.test('Queues: depths and the latest jobs with attempts and last error, updated live', async () => {
    await nav('Queues');
    await page.locator('#queue-depths dd[data-queue="mail"]').filter({ hasText: '0' }).waitFor();
    const now = Date.now();
    const u = (await s.users.byUsername('dora'))!;
    await s.storage.db
      .insertInto('tb_mail')
      .values([
        {
          userid: u.id,
          from_addr: 'noc@example.com',
          to_addr: 'dora@example.com',
          subject: 'waiting',
          state: 'queued',
          attempts: 2,
          next_try_at: now + 60_000,
          error: '451 <try later>',
          created_at: now,
          updated_at: now,
        },
        {
          userid: u.id,
          from_addr: 'noc@example.com',
          to_addr: 'gone@example.com',
          subject: 'failed',
          state: 'failed',
          attempts: 5,
          next_try_at: 0,
          error: '550 no such user',
          created_at: now,
          updated_at: now - 1000,
        },
      ])
      .execute();
    await page.locator('#queue-depths dd[data-queue="mail"]').filter({ hasText: '1' }).waitFor({ timeout: 5000 });
    const jobs = page.locator('#queue-jobs');
    const waiting = jobs.getByRole('row').filter({ hasText: 'dora@example.com' });
    await waiting.waitFor();
    assert.match((await waiting.textContent()) ?? '', /mail.*queued\s*2\s*451 <try later>/);
    assert.match((await jobs.getByRole('row').filter({ hasText: 'gone@' }).textContent()) ?? '', /failed\s*5\s*550/);
    await fitsThePhone();
    await shot('queues');
  });

  await t.test('the keyboard alone: Tab to a field, type, Enter submits; the labels name every control', async () => {
    await nav('DIDs');
    const f = page.getByRole('form', { name: 'Add numbers' });
    const assign = page.getByRole('form', { name: 'Assign a number' });
    // Tab walks the fields in their order: Numbers → range from → Count → Add, then on to the next form
    await f.getByLabel('Numbers (comma or space separated)').focus();
    const focused = () => page.evaluate('document.activeElement.name || document.activeElement.textContent');
    const order: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await focused());
    }
    assert.deepEqual(order, ['from', 'count', 'Add', 'number']);
    assert.equal(await assign.getByLabel('Number').evaluate((e) => e === e.ownerDocument.activeElement), true);
    for (let i = 0; i < 4; i++) await page.keyboard.press('Shift+Tab');
    await page.keyboard.type('3612399');
    await page.keyboard.press('Enter');
    await ok('Add numbers', /^OK: added 1 number\(s\)/);
    // every input, select and textarea of the management pages has a label
    for (const p of ['DIDs', 'Gateways', 'API rules']) {
      await nav(p);
      await page.locator('main form').first().waitFor();
      const unlabelled = await page.evaluate(
        "[...document.querySelectorAll('main input, main select, main textarea')]" +
          '.filter((el) => !el.labels || !el.labels.length).map((el) => el.name)',
      );
      assert.deepEqual(unlabelled, [], `${p}: controls without a label`);
    }
  });

  await t.test('an end user is not offered the admin pages, and the queue view tells them why', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').fill('dora');
    await page.getByLabel('Password').fill('Dora-pw-1357');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('dora (enduser)').waitFor();
    for (const p of ['DIDs', 'Gateways', 'API rules', 'Queues'])
      assert.equal(await page.getByRole('button', { name: p, exact: true }).count(), 0, p);
    const text = await page.evaluate(async () => {
      const r = await fetch('/console/api/events?views=queues');
      const reader = r.body!.getReader();
      let s = '';
      while (!s.includes('event: queues')) s += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      return s;
    });
    assert.match(text, /the queues are shown to admins only/);
  });
});
