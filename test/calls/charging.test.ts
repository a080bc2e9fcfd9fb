/** The billing policy of calls (src/domain/calls/charging.ts): who pays, the free rate, the two-leg reservation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bridgeSeconds,
  carrierOf,
  freeRate,
  freeRateFor,
  payerOf,
  reserveBridge,
  type Reservations,
} from '../../src/domain/calls/charging.js';
import { DomainError } from '../../src/domain/errors.js';
import type { Rate } from '../../src/domain/rating/rate.js';
import type { ReserveInput, Reservation } from '../../src/domain/calls/types.js';

const rate = (price: number): Rate => ({ ...freeRate('USD', 'x'), id: 1, planId: 1, prefix: '1', price });

test('payerOf: requester, then forwarder, then caller, then the called user of a DID; 0 for nobody', () => {
  assert.equal(payerOf({ caller: 5 }), 5);
  assert.equal(payerOf({ caller: 5, forwarder: 7 }), 7, 'a forwarded leg is paid by the forwarding user');
  assert.equal(payerOf({ calledUser: 9 }), 9, 'a call from a gateway to a DID is the DID owner’s');
  assert.equal(payerOf({ caller: 0, calledUser: 9 }), 9);
  assert.equal(payerOf({ caller: 5, calledUser: 9 }), 5);
  assert.equal(payerOf({ requester: 3, caller: 5 }), 3, 'callback / p2p: the requester pays both legs');
  assert.equal(payerOf({}), 0);
});

test('freeRate: a zero rate in the currency; freeRateFor reads the account currency (undefined: no account)', async () => {
  const r = freeRate('EUR');
  assert.deepEqual([r.price, r.connectfee, r.currency, r.destination, r.increment], [0, 0, 'EUR', 'on-net', 1]);
  assert.equal(freeRate('EUR', 'free').destination, 'free');
  const ledger = { balance: async (id: number) => (id === 1 ? { credit: 0, currency: 'GBP' } : undefined) };
  assert.equal((await freeRateFor(ledger as never, 1))?.currency, 'GBP');
  assert.equal(await freeRateFor(ledger as never, 2), undefined);
});

test('carrierOf and bridgeSeconds: leg b carries when rated; free bridges last to the max call age', () => {
  const r = rate(600_000); // 10 000 micro per second
  assert.equal(carrierOf(r, r), 'b');
  assert.equal(carrierOf(r, undefined), 'a');
  assert.equal(carrierOf(undefined, undefined), null);
  assert.equal(bridgeSeconds(undefined, undefined, undefined, 10, 7200), 7190);
  assert.equal(bridgeSeconds(50_000, r, r, 1, 7200), 2);
  assert.equal(bridgeSeconds(50_000, undefined, r, 100, 7200), 5);
});

/** A LiveCalls stand-in: reserves up to `credit`, records what was asked. */
function fakeLive(credit: number, capped = false) {
  const log: string[] = [];
  let reserved = 0;
  const live: Reservations = {
    async reserve(r: ReserveInput): Promise<Reservation> {
      log.push(`reserve ${r.leg} ${r.rate ? r.rate.price : 'none'}`);
      if (!r.rate || r.rate.price === 0)
        return { ok: true, maxduration: 7200, reserved: 0, available: 0, capped: true };
      const left = credit - reserved;
      if (left <= 0) return { ok: false, status: 402, reason: 'insufficient credit' };
      reserved += left;
      return { ok: true, maxduration: 100, reserved: left, available: left, capped };
    },
    async recordRefusal(r, reason) {
      log.push(`refused ${r.leg} ${reason}`);
      return undefined;
    },
    async finish(callid, leg, o) {
      log.push(`finish ${leg} ${o?.reason ?? ''}`);
      return undefined;
    },
    reservedFor: () => reserved,
  };
  return { live, log };
}

const services = {
  ledger: { balance: async () => ({ credit: 1_000_000, currency: 'USD' }) },
  rating: { maxDuration: () => 100 },
} as never;

const input = (a?: Rate, b?: Rate, aUser?: string) => ({
  callid: 'c1',
  userId: 1,
  currency: 'USD',
  startAt: 0,
  a: { callee: aUser ?? '1555', caller: '1666', route: 'gw:a', rate: a, username: aUser },
  b: { callee: '1666', caller: aUser ?? '1555', route: 'gw:b', rate: b },
});

test('reserveBridge: the rated leg b carries the reservation, the on-net leg a is free at the zero rate', async () => {
  const { live, log } = fakeLive(50_000);
  const budget = await reserveBridge(live, services, input(undefined, rate(600_000), 'alice'));
  assert.equal(budget, 50_000);
  assert.deepEqual(log, ['reserve b 600000', 'reserve a 0']);
});

test('reserveBridge: both legs free → no budget; not enough for both legs → 402 with both legs on record', async () => {
  const free = fakeLive(0);
  assert.equal(await reserveBridge(free.live, services, input(undefined, undefined, 'alice')), undefined);
  const { live, log } = fakeLive(10_000); // 1 s of leg b alone, but both legs together need 2 × 10 000
  await assert.rejects(
    reserveBridge(live, services, input(rate(600_000), rate(600_000))),
    (e: unknown) =>
      e instanceof DomainError && e.status === 402 && e.message === 'insufficient credit for both legs (402)',
  );
  assert.deepEqual(log, [
    'reserve b 600000',
    'finish b insufficient credit for both legs',
    'refused a insufficient credit for both legs',
  ]);
});

test('reserveBridge: a refused carrier refuses the other leg too, with its reason and status', async () => {
  const { live, log } = fakeLive(0);
  await assert.rejects(
    reserveBridge(live, services, input(undefined, rate(600_000))),
    (e: unknown) => e instanceof DomainError && e.status === 402 && e.message === 'insufficient credit (402)',
  );
  assert.deepEqual(log, ['reserve b 600000', 'refused a insufficient credit']);
});
