/** The authentication look-up's cache: hits skip the database, refreshes skip decryption, writes invalidate. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage } from '../../src/storage/db.js';
import { SecretBox } from '../../src/domain/accounts/secrets.js';
import { UserService } from '../../src/domain/accounts/users.js';

async function setup(cacheMs?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'vx-authcache-'));
  const storage = await openStorage('', dir);
  const box = SecretBox.fromDataDir(dir);
  let decrypts = 0;
  const decrypt = box.decrypt.bind(box);
  box.decrypt = (enc: string) => {
    decrypts++;
    return decrypt(enc);
  };
  const users = new UserService(storage.db, box, { cacheMs });
  return {
    users,
    storage,
    decrypts: () => decrypts,
    close: async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a cached look-up is served without the database; a refresh of an unchanged password decrypts nothing', async () => {
  const t = await setup(0); // every look-up goes to the database
  try {
    const u = await t.users.create({ username: 'alice', password: 'pw-1' });
    assert.equal((await t.users.forAuth('alice'))!.password, 'pw-1');
    assert.equal(t.decrypts(), 1);
    for (let i = 0; i < 5; i++) assert.equal((await t.users.forAuth('alice'))!.password, 'pw-1');
    assert.equal(t.decrypts(), 1, 'same stored password: decrypted once');
    // a change made directly in the database is seen on the next refresh
    await t.storage.db.updateTable('tb_users').set({ enabled: 0 }).where('id', '=', u.id).execute();
    assert.equal((await t.users.forAuth('alice'))!.enabled, false);
    await t.users.setPassword(u.id, 'pw-2');
    assert.equal((await t.users.forAuth('alice'))!.password, 'pw-2');
    assert.equal(t.decrypts(), 2);
  } finally {
    await t.close();
  }
});

test('within its lifetime an entry is served from memory, and writes through the service invalidate it', async () => {
  const t = await setup(60_000);
  try {
    const u = await t.users.create({ username: 'bob', password: 'pw-1' });
    assert.equal((await t.users.forAuth('bob'))!.password, 'pw-1');
    // a direct database change is not seen while the entry is fresh (reload/syncusers clear the cache for it)
    await t.storage.db.updateTable('tb_users').set({ enabled: 0 }).where('id', '=', u.id).execute();
    assert.equal((await t.users.forAuth('bob'))!.enabled, true);
    t.users.clearCache();
    assert.equal((await t.users.forAuth('bob'))!.enabled, false);
    await t.users.update(u.id, { enabled: 1 });
    assert.equal((await t.users.forAuth('bob'))!.enabled, true);
    await t.users.setPassword(u.id, 'pw-2');
    assert.equal((await t.users.forAuth('bob'))!.password, 'pw-2');
    assert.equal(await t.users.forAuth('nobody'), null);
    await t.users.create({ username: 'nobody', password: 'pw-3' });
    assert.equal((await t.users.forAuth('nobody'))!.password, 'pw-3', 'a negative entry goes with a create');
  } finally {
    await t.close();
  }
});

test('look-ups in one turn share a query and each gets its own account (username, then PIN, DID, id)', async () => {
  const t = await setup(60_000);
  try {
    const a = await t.users.create({ username: 'alice', password: 'pw-a', pin: '7777', did: '3611111' });
    const b = await t.users.create({ username: '7777x', password: 'pw-b', pin: '3611111' });
    const c = await t.users.create({ username: String(a.id), password: 'pw-c' }); // a username that is an id
    const keys = ['alice', '7777', '3611111', String(b.id), String(a.id), 'nobody', 'alice', '7777x'];
    const got = await Promise.all(keys.map((k) => t.users.forAuth(k)));
    assert.deepEqual(
      got.map((u) => u?.username ?? null),
      ['alice', 'alice', '7777x', '7777x', String(a.id), null, 'alice', '7777x'],
    );
    assert.equal(got[4]!.id, c.id, 'a username wins over a user id');
    assert.equal(got[2]!.password, 'pw-b', 'a PIN wins over a DID');
    const many = await Promise.all(Array.from({ length: 450 }, (_, i) => t.users.forAuth(i % 2 ? 'alice' : `x${i}`)));
    assert.equal(many.filter((u) => u?.username === 'alice').length, 225);
    assert.equal(many.filter((u) => u === null).length, 225);
  } finally {
    await t.close();
  }
});

test('a cache clear while a look-up runs: the older result is not kept', async () => {
  const t = await setup(60_000);
  try {
    const u = await t.users.create({ username: 'carol', password: 'pw-1' });
    const first = t.users.forAuth('carol');
    await t.users.setPassword(u.id, 'pw-2'); // clears the cache while the first look-up may be under way
    await first;
    assert.equal((await t.users.forAuth('carol'))!.password, 'pw-2');
  } finally {
    await t.close();
  }
});

test('entries long past their lifetime are swept (the next look-up decrypts again)', async () => {
  const t = await setup(10);
  try {
    await t.users.create({ username: 'dave', password: 'pw-1' });
    await t.users.forAuth('dave');
    await t.users.forAuth('dave'); // stale but kept: no second decryption
    assert.equal(t.decrypts(), 1);
    await new Promise((r) => setTimeout(r, 1100));
    await t.users.forAuth('someone-else'); // a query: sweeps what is past the keep time
    assert.equal((await t.users.forAuth('dave'))!.password, 'pw-1');
    assert.equal(t.decrypts(), 2);
  } finally {
    await t.close();
  }
});
