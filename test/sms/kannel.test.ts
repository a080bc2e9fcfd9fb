/**
 * Interop with Kannel's SMPP implementation: `drive_smpp` (Debian kannel-extras, /usr/lib/kannel/test) is Kannel's
 * SMPP server for testing, built on Kannel's own PDU codec (gw/smsc/smpp_pdu.c). voxswitch binds to it as a
 * transmitter and as a receiver (drive_smpp answers no bind_transceiver); an SMS sent with the API (a single and a
 * concatenated one) arrives as submit_sm that Kannel decodes and answers; the mobile-originated messages drive_smpp
 * sends once a receiver is bound (456 → 123, texts "1", "2") reach the user whose DID is 123, charged as SMS once
 * each. opensmppbox (Kannel's SMPP server in front of bearerbox, the way to reach fakesmsc) is not packaged by
 * Debian, so bearerbox itself is not in the path; drive_smpp connects to 127.0.0.1:13001 as a box (a fixed port),
 * where this test listens in bearerbox's place. drive_smpp has no option for its listening address: it listens on
 * every interface of the test machine while it runs; the test talks to it on 127.0.0.1 only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startTestServer, ADMIN_PASSWORD, API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import { freePort } from '../helpers/ports.js';
import { spawnTool, waitBound, type Running } from '../helpers/processes.js';
import { skipWithout, toolPath } from '../helpers/tools.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

// drive_smpp is installed beside Kannel's other test programs, not on PATH
process.env.PATH = `${process.env.PATH ?? ''}:/usr/lib/kannel/test`;

const LOCAL = src('127.0.0.1');
const admin = { authkey: API_KEY, authid: 'admin', authpwd: ADMIN_PASSWORD };
let t: TestServer | undefined;
let kannel: Running | undefined;
let box: Server | undefined;
const boxConns = new Set<Socket>();
const h = (e: string, p: Record<string, string>) => t!.srv.gateway.handle(req(e, { ...admin, ...p }, LOCAL));

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}; drive_smpp:\n${kannel?.output().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  // drive_smpp's box connection (bearerbox's smsbox port); if something already listens there it takes it
  box = createServer((c) => {
    boxConns.add(c);
    c.on('error', () => undefined);
    c.on('close', () => boxConns.delete(c));
  });
  await new Promise<void>((r) => {
    box!.once('error', () => r());
    box!.listen(13001, '127.0.0.1', r);
  });
});
after(async () => {
  await t?.stop();
  kannel?.child.kill('SIGKILL');
  await kannel?.done;
  for (const c of boxConns) c.destroy();
  await new Promise<void>((r) => (box?.listening ? box.close(() => r()) : r()));
});

test('Kannel drive_smpp as the SMSC: submit_sm decoded and answered, its MO messages reach the DID and are charged', async (c) => {
  if (skipWithout(c, 'drive_smpp')) return;
  const port = await freePort();
  kannel = spawnTool(toolPath('drive_smpp'), ['-p', String(port), '-m', '2', '-v', '0'], undefined, 60_000);
  await waitBound(kannel, port, 'tcp');
  t = await startTestServer({ defaultcountrycode: '1', apilimituser: '0', apilimitip: '0' });
  const kan = { u_username: 'kan', u_password: 'kanpw-1', u_credit: '1.00', u_currency: 'USD', u_did: '123' };
  assert.equal((await h('newuseri', kan)).ok, true);
  // the receiver's plan prices the sender 456 (as voxswitch normalises it) at 0.04 a part
  const from = t.srv.services.rating.normalize('456', '');
  const csv = `prefix,destination,price,connectfee,minduration,increment,currency\n${from},Kannel,0.01,0.04,60,60,USD\n1,USA,0.01,0.05,60,60,USD\n`;
  assert.deepEqual((await importTariffsCsv(t.srv.services.storage.db, csv)).errors, []);
  await t.srv.services.rating.load();
  const base = {
    host: '127.0.0.1',
    port: String(port),
    system_id: 'vox',
    password: 'secret',
    default_sender: '1555000',
  };
  assert.equal(
    (await h('addsmsgateway', { ...base, name: 'kannel-tx', bindmode: 'transmitter', prefix: '1' })).ok,
    true,
  );
  assert.equal(
    (await h('addsmsgateway', { ...base, name: 'kannel-rx', bindmode: 'receiver', priority: '99' })).ok,
    true,
  );
  await until('both binds', async () => {
    const rows = (await h('smsgateways', {})).rows ?? [];
    return rows.length === 2 && rows.every((r) => r.state === 'bound');
  });

  // MO: drive_smpp delivers "1" and "2" from 456 to 123 once the receiver is bound
  const db = t.srv.services.storage.db;
  const stored = await until('both MO messages', async () => {
    const r = await db.selectFrom('tb_imessages').select(['fromuser', 'body']).where('touser', '=', 'kan').execute();
    return r.length >= 2 && r;
  });
  assert.deepEqual(stored.map((r) => [r.fromuser, r.body]).sort(), [
    ['456', '1'],
    ['456', '2'],
  ]);
  const uid = (await t.srv.services.users.byUsername('kan'))!.id;
  const mo = await db
    .selectFrom('tb_ledger')
    .select('amount')
    .where('userid', '=', uid)
    .where('reason', '=', 'smsmo')
    .execute();
  assert.deepEqual(
    mo.map((e) => Number(e.amount)),
    [-40_000, -40_000],
  );

  // MT: a single and a three-part message through the transmitter bind
  const asKan = (p: Record<string, string>) =>
    t!.srv.gateway.handle(req('sms', { authkey: API_KEY, authid: 'kan', authpwd: 'kanpw-1', ...p }, LOCAL));
  const one = await asKan({ bnum: '15551230000', txt: 'hello Kannel' });
  assert.equal(one.ok, true, one.text);
  const long = await asKan({ bnum: '15551230001', txt: 'Concatenated for Kannel. '.repeat(15) });
  assert.equal(long.ok, true, long.text);
  const ids = [one, long].map((r) => Number(r.fields!.id));
  await until('submitted', async () => {
    const rows = await Promise.all(ids.map((id) => t!.srv.services.sms.queue.byId(id)));
    return rows.every((r) => r?.state === 'submitted') && rows;
  });
  const out = kannel.output();
  assert.match(out, /submit_sm: short_message = <hello Kannel>/);
  // Kannel's codec decoded one submit_sm per part: 1 + 3
  assert.equal(out.match(/submit_sm: short_message = </g)?.length, 4, out.slice(-1500));
  // every PDU voxswitch wrote (binds, enquire_link and deliver_sm answers, submit_sm with UDH) Kannel understood
  assert.doesNotMatch(out, /Unhandled SMPP PDU|PDU unpacking failed|garbage/, out.slice(-1500));
  const parts = await db.selectFrom('tb_smsparts').select('state').where('smsid', 'in', ids).execute();
  assert.equal(parts.length, 4);
  assert.deepEqual(await t.srv.services.ledger.audit(), []);
});
