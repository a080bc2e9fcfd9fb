/** SMS gateway rules (validation, route order, sender lists) and delivery receipt parsing (pure functions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  validateSmsGatewayInput,
  orderSmsGateways,
  senderAllowed,
  type SmsGateway,
} from '../../src/domain/messaging/sms/gateways.js';
import { parseReceipt, receiptOutcome } from '../../src/domain/messaging/sms/receipts.js';
import { isTemporary, statusName } from '../../src/domain/messaging/smpp/status.js';

const gw = (id: number, prefixes: string[], priority = 10, extra: Partial<SmsGateway> = {}): SmsGateway => ({
  ...validateSmsGatewayInput({ name: `g${id}`, host: '127.0.0.1', system_id: 'x', priority: String(priority) }),
  id,
  passwordEnc: '',
  prefixes,
  ...extra,
});

test('addsmsgateway input: defaults, limits of SMPP 3.4, clear errors', () => {
  const g = validateSmsGatewayInput({ name: 'a', host: 'smsc.example.com', system_id: 'acct', prefix: '+44, 1' });
  assert.equal(g.port, 2775);
  assert.equal(g.bindMode, 'transceiver');
  assert.deepEqual(g.prefixes, ['44', '1']);
  assert.equal(g.window, 10);
  assert.equal(validateSmsGatewayInput({ name: 'a', host: 'h', system_id: 'x', tls: '1' }).port, 3550);
  const err = (p: Record<string, string>) => {
    try {
      validateSmsGatewayInput({ name: 'a', host: 'h', system_id: 'x', ...p });
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.match(err({ system_id: '' }), /system_id: the SMPP system_id .* is missing/);
  assert.match(err({ system_id: 'x'.repeat(16) }), /at most 15/);
  assert.match(err({ password: '123456789' }), /password: at most 8/);
  assert.match(err({ window: '0' }), /window: expected a whole number from 1 to 1000/);
  assert.match(err({ prefix: '44a' }), /prefix: digits/);
  assert.match(err({ host: 'bad host' }), /host: "bad host"/);
  assert.match(err({ default_sender: 'TooLongAlphaName' }), /default_sender/);
});

test('route order: longest matching prefix, then priority, then id; disabled and receiver-only left out', () => {
  const list = [
    gw(1, [], 1),
    gw(2, ['44'], 20),
    gw(3, ['447'], 50),
    gw(4, ['44'], 5),
    gw(5, ['447'], 1, { enabled: false }),
    gw(6, ['4477'], 1, { bindMode: 'receiver' }),
    gw(7, ['1']),
  ];
  assert.deepEqual(
    orderSmsGateways(list, '447700900000').map((g) => g.id),
    [3, 4, 2, 1],
  );
  assert.deepEqual(
    orderSmsGateways(list, '4930').map((g) => g.id),
    [1],
  );
  assert.deepEqual(
    orderSmsGateways(list.slice(1), '4930').map((g) => g.id),
    [],
  );
});

test('sender lists: exact and prefix* entries; an empty list admits every sender', () => {
  const g = gw(1, [], 10, { allowedSenders: ['VoxShop', '4470*'] });
  assert.equal(senderAllowed(g, 'VoxShop'), true);
  assert.equal(senderAllowed(g, '447001'), true);
  assert.equal(senderAllowed(g, '4480'), false);
  assert.equal(senderAllowed(gw(2, []), 'anything'), true);
});

test('delivery receipts: appendix B text and message_state; intermediate states are not final', () => {
  const r = parseReceipt('id:0A1B sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000');
  assert.deepEqual(r, { id: '0A1B', stat: 'DELIVRD', err: '000' });
  assert.deepEqual(receiptOutcome(undefined, 'DELIVRD'), { state: 'delivered', text: 'DELIVRD' });
  assert.deepEqual(receiptOutcome(undefined, 'undeliv'), { state: 'failed', text: 'UNDELIV' });
  assert.deepEqual(receiptOutcome(5, 'DELIVRD'), { state: 'failed', text: 'UNDELIVERABLE' });
  assert.equal(receiptOutcome(undefined, 'ENROUTE'), undefined);
  assert.equal(receiptOutcome(6, 'ACCEPTD'), undefined);
  assert.equal(parseReceipt('hello there'), undefined);
});

test('SMPP statuses: names and which are temporary', () => {
  assert.equal(statusName(0x58), 'ESME_RTHROTTLED (0x58)');
  assert.equal(isTemporary(0x58), true);
  assert.equal(isTemporary(0x14), true);
  assert.equal(isTemporary(0x0b), false);
  assert.equal(isTemporary(0x0e), false);
});
