/** The SIP services' SQL on PostgreSQL: offline IMs exactly once, presence upsert (skipped with the reason when no PostgreSQL). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshPgDatabase } from '../../helpers/pg.js';
import { startTestServer } from '../../helpers/server.js';
import { SipServer } from '../../../src/sip/server.js';
import { FakeStack } from './fake.js';

test('PostgreSQL: offline IM store/claim/delivered/takeAll and tb_presence upsert', async (c) => {
  const db = await freshPgDatabase();
  if ('skip' in db) {
    return c.skip(db.skip);
  }
  const t = await startTestServer({ dburl: db.url });
  try {
    const u = await t.srv.services.users.create({ username: 'pguser', password: 'pgpw' });
    const sip = new SipServer(t.srv.services, new FakeStack());
    await sip.start();
    const a = await sip.ims.store('x', 'pguser', 'one');
    await sip.ims.store('y', 'pguser', 'two');
    const claimed = await sip.ims.claim('pguser');
    assert.deepEqual(
      claimed.map((m) => m.body),
      ['one', 'two'],
    );
    assert.equal(await sip.ims.delivered(a), true);
    assert.equal(await sip.ims.delivered(a), false, 'marked once');
    sip.ims.release([claimed[1]!.id]);
    const taken = await sip.ims.takeAll('pguser');
    assert.deepEqual(
      taken.map((m) => m.body),
      ['two'],
    );
    assert.deepEqual(await sip.ims.takeAll('pguser'), []);
    await sip.setPresence(u.id, 'pguser', 'Away');
    await sip.setPresence(u.id, 'pguser', 'Busy');
    const rows = await t.srv.services.storage.db.selectFrom('tb_presence').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.status, 'Busy');
    await sip.stop();
  } finally {
    await t.stop();
    await db.drop();
  }
});
