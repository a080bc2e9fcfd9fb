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
