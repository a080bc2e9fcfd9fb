/** Routing on PostgreSQL: gateway table writes (unique name), the DID look-ups (IN lists) and routingtest. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, src } from '../helpers/source.js';
import { usePgTestServer } from '../helpers/pg.js';
import { importTariffsCsv } from '../../src/domain/rating/csv.js';

const pg = usePgTestServer('routing', { apilimitip: '0', apilimituser: '0', defaultcountrycode: '1' });
const LOCAL = src('127.0.0.1');
const h = (e: string, p: Record<string, string>) => pg.t!.srv.gateway.handle(req(e, p, LOCAL));

test('PostgreSQL: addgateway / duplicate / gateways / routingtest to DIDs and gateways / delgateway', async (c) => {
  if (pg.skip) return c.skip(pg.skip);
  assert.equal(pg.t!.srv.services.storage.dialect, 'pg');
  assert.equal(
    (await h('newuseri', { u_username: 'pbob', u_password: 'pbobpw', u_currency: 'USD', u_credit: '2' })).ok,
    true,
  );
  assert.equal(
    (await h('newuseri', { u_username: 'palice', u_password: 'palicepw', u_currency: 'USD', u_did: '+4930777000' })).ok,
    true,
  );
  const db = pg.t!.srv.services.storage.db;
  assert.deepEqual(
    (
      await importTariffsCsv(
        db,
        'prefix,destination,price,connectfee,minduration,increment,currency\n49,Germany,0.012,0,60,60,USD\n',
      )
    ).errors,
    [],
  );
  await pg.t!.srv.services.rating.load();
  assert.equal(
    (
      await h('addgateway', {
        name: 'pg-a',
        host: '192.0.2.40',
        prefix: '49',
        password: 'pw-a',
        inbound_ip: '198.51.100.40',
      })
    ).ok,
    true,
  );
  assert.equal((await h('addgateway', { name: 'pg-b', host: '192.0.2.41', priority: '20' })).ok, true);
  const dup = await h('addgateway', { name: 'pg-a', host: '192.0.2.42' });
  assert.equal(dup.text, 'a gateway named "pg-a" already exists (delgateway it first)');
  assert.equal((await h('gateways', {})).text, '2 gateway(s): pg-a,pg-b');
  const out = await h('routingtest', { caller: 'pbob', called: '+49 30 1234567' });
  assert.equal(out.fields?.gateways, 'pg-a,pg-b', out.text);
  assert.equal(out.fields?.maxduration, 9960);
  // a DID stored with a leading + is still found; from the gateway's address without authentication
  assert.equal((await h('routingtest', { caller: 'pbob', called: '4930777000' })).text, 'route: local user palice');
  assert.equal(
    (await h('routingtest', { ip: '198.51.100.40', caller: '123', called: '4930777000' })).text,
    'route: local user palice',
  );
  const d = await pg.t!.srv.services.routing.route({
    caller: 'pbob',
    called: '4930123',
    fromIp: '',
    user: (await pg.t!.srv.services.users.byUsername('pbob'))!,
  });
  assert.ok(d.kind === 'gateways' && d.candidates[0]!.password === 'pw-a');
  assert.equal((await h('delgateway', { name: 'pg-a' })).text, 'gateway pg-a deleted');
  assert.equal((await h('gateways', {})).text, '1 gateway(s): pg-b');
});
