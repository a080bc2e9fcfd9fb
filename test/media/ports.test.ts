/**
 * RTP port pool: pairs of an even RTP port and its RTCP port from the range, round robin, exhaustion, pairs held by
 * others skipped, release.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { PortPool, PortsExhaustedError } from '../../src/sip/media/ports.js';
import { RtpRelay } from '../../src/sip/media/relay.js';

const base = () => 42000 + 2 * Math.floor(Math.random() * 5000);

test('even ports with their RTCP port, from the range, each bound (a second bind on either fails)', async () => {
  const min = base() + 1; // odd: starts at the next even port
  const pool = new PortPool(min, min + 10, '127.0.0.1');
  assert.equal(pool.capacity, 5);
  assert.equal(new PortPool(min + 1, min + 9, '127.0.0.1').capacity, 4, 'the last even port has no RTCP port');
  const got: Array<import('../../src/sip/media/ports.js').BoundPair> = [];
  for (let i = 0; i < 5; i++) got.push(await pool.bind());
  assert.deepEqual(
    got.map((g) => g.port),
    [min + 1, min + 3, min + 5, min + 7, min + 9],
  );
  assert.equal(pool.inUse, 5);
  const other = createSocket('udp4');
  await assert.rejects(
    new Promise((res, rej) => {
      other.once('error', rej);
      other.bind(got[0]!.port, '127.0.0.1', () => res(undefined));
    }),
  );
  other.close();
  const other2 = createSocket('udp4');
  await assert.rejects(
    new Promise((res, rej) => {
      other2.once('error', rej);
      other2.bind(got[0]!.port + 1, '127.0.0.1', () => res(undefined));
    }),
    'the RTCP port is bound too',
  );
  other2.close();
  await assert.rejects(pool.bind(), PortsExhaustedError);
  pool.release(got[2]!);
  assert.equal(pool.inUse, 4);
  const again = await pool.bind();
  assert.equal(again.port, got[2]!.port, 'the freed port is used again');
  for (const g of [...got.filter((_, i) => i !== 2), again]) pool.release(g);
  assert.equal(pool.inUse, 0);
});

test('a pair of which another program holds the RTP or the RTCP port is skipped', async () => {
  const min = base();
  const squatter = createSocket('udp4');
  await new Promise<void>((r) => squatter.bind(min, '127.0.0.1', () => r()));
  const squatter2 = createSocket('udp4');
  await new Promise<void>((r) => squatter2.bind(min + 3, '127.0.0.1', () => r()));
  const pool = new PortPool(min, min + 6, '127.0.0.1');
  const a = await pool.bind();
  assert.equal(a.port, min + 4);
  pool.release(a);
  squatter.close();
  squatter2.close();
});

test('a relay session takes 2 ports per stream; exhaustion rejects the session and frees what it had bound', async () => {
  const min = base();
  const relay = new RtpRelay({ min, max: min + 7, bindAddr: '127.0.0.1', timeoutSeconds: 0 }); // 4 pairs
  const s1 = await relay.open('127.0.0.1', 1);
  assert.deepEqual([...s1.ports('a'), ...s1.ports('b')], [min, min + 2]);
  await assert.rejects(relay.open('127.0.0.1', 2), /no free RTP port/);
  assert.equal(relay.pool.inUse, 2, 'the partly opened session released its ports');
  const s2 = await relay.open('127.0.0.1', 1);
  assert.equal(relay.pool.inUse, 4);
  s1.release();
  s2.release();
  assert.equal(relay.pool.inUse, 0);
  assert.equal(relay.size, 0);
  assert.throws(() => new PortPool(41001, 41001), /no even port/);
  assert.throws(() => new PortPool(41000, 41000), /no even port with its RTCP port/);
});
