/** GSM 03.38 / UCS-2 encoding and splitting: round trips and part counts (fast-check), UDH, the limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeSms,
  encodeGsm7,
  decodeGsm7,
  decodePayload,
  nonGsmChars,
  partMessage,
  readConcat,
  LIMITS,
} from '../../src/domain/messaging/sms/encoding.js';

const BASIC = [
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿',
  ...'abcdefghijklmnopqrstuvwxyzäöñüà',
];
const EXT = [...'\f^{}\\[~]|€'];
const gsmChar = fc.constantFrom(...BASIC, ...EXT);
const gsmText = fc.array(gsmChar, { maxLength: 1200 }).map((a) => a.join(''));
const septets = (s: string) => [...s].reduce((n, c) => n + (EXT.includes(c) ? 2 : 1), 0);

test('GSM: every text of the basic and extension tables round-trips; extension characters count 2 septets', () => {
  fc.assert(
    fc.property(gsmText, (s) => {
      assert.equal(decodeGsm7(encodeGsm7(s)), s);
      const e = encodeSms(s, 'gsm7');
      assert.equal(e.units, septets(s));
      assert.equal(e.parts.map((p) => decodePayload(p, 'gsm7')).join(''), s);
    }),
  );
  assert.deepEqual([...encodeGsm7('€[a')], [0x1b, 0x65, 0x1b, 0x3c, 0x61]);
  assert.deepEqual([...encodeGsm7('@£\n')], [0x00, 0x01, 0x0a]);
});

test('GSM: one part up to 160 septets, else parts of at most 153 with no escape pair split, count minimal', () => {
  fc.assert(
    fc.property(gsmText, (s) => {
      const e = encodeSms(s, 'gsm7');
      const n = septets(s);
      if (n <= 160) assert.equal(e.parts.length, 1);
      else {
        for (const p of e.parts) {
          assert.ok(p.length <= 153);
          assert.notEqual(p[p.length - 1], 0x1b, 'an escape never ends a part');
        }
        // at least ceil(n/153) parts, and at most one more per escape pair pushed over a boundary
        assert.ok(e.parts.length >= Math.ceil(n / 153));
        assert.ok(e.parts.length <= Math.ceil(n / 152));
      }
    }),
  );
  assert.equal(encodeSms('a'.repeat(160), 'gsm7').parts.length, 1);
  assert.equal(encodeSms('a'.repeat(161), 'gsm7').parts.length, 2);
  assert.equal(encodeSms('a'.repeat(306), 'gsm7').parts.length, 2);
  assert.equal(encodeSms('a'.repeat(307), 'gsm7').parts.length, 3);
  assert.equal(encodeSms('€'.repeat(80), 'gsm7').parts.length, 1);
  assert.equal(encodeSms('€'.repeat(81), 'gsm7').parts.length, 2);
  // 152 basic + '€': the pair does not fit the first part's last septet
  const e = encodeSms('a'.repeat(152) + '€' + 'b'.repeat(10), 'gsm7');
  assert.deepEqual(
    e.parts.map((p) => p.length),
    [152, 12],
  );
});

test('UCS-2: round trips (surrogate pairs never split), 70 in one message, 67 a part', () => {
  const anyText = fc.string({ unit: 'grapheme', maxLength: 400 });
  fc.assert(
    fc.property(anyText, (s) => {
      const e = encodeSms(s, 'ucs2');
      assert.equal(e.parts.map((p) => decodePayload(p, 'ucs2')).join(''), s);
      assert.equal(e.units, s.length);
      if (s.length <= 70) assert.equal(e.parts.length, 1);
      else for (const p of e.parts) assert.ok(p.length <= 67 * 2);
    }),
  );
  assert.equal(encodeSms('ő'.repeat(70), 'ucs2').parts.length, 1);
  assert.equal(encodeSms('ő'.repeat(71), 'ucs2').parts.length, 2);
  assert.equal(encodeSms('ő'.repeat(134), 'ucs2').parts.length, 2);
  assert.equal(encodeSms('ő'.repeat(135), 'ucs2').parts.length, 3);
  assert.deepEqual([...encodeSms('€', 'ucs2').parts[0]!], [0x20, 0xac]);
});

test('non-GSM characters are found (each once, in order); GSM text has none', () => {
  assert.deepEqual(nonGsmChars('Grüße ő😀 ő'), ['ő', '😀']);
  assert.deepEqual(nonGsmChars('Ça coûte 5€ [ok]'), ['û']);
  fc.assert(fc.property(gsmText, (s) => assert.deepEqual(nonGsmChars(s), [])));
  assert.throws(() => encodeSms('ő', 'gsm7'), RangeError);
});

test('concatenated parts carry the 8-bit-reference UDH and esm_class 0x40; a single part none', () => {
  const one = partMessage(Buffer.from('hi'), 7, 1, 0);
  assert.equal(one.esm, 0);
  assert.deepEqual([...one.sm], [0x68, 0x69]);
  const p = partMessage(Buffer.from([1, 2]), 0xab, 3, 2);
  assert.equal(p.esm, 0x40);
  assert.deepEqual([...p.sm], [0x05, 0x00, 0x03, 0xab, 3, 3, 1, 2]);
  assert.deepEqual(readConcat(p.sm.subarray(0, 6)), { ref: 0xab, total: 3, seq: 3 });
  assert.deepEqual(readConcat(Buffer.from([0x06, 0x08, 0x04, 0x12, 0x34, 2, 1])), { ref: 0x1234, total: 2, seq: 1 });
  assert.equal(LIMITS.gsm7.part, 153);
});
