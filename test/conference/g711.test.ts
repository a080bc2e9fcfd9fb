/** G.711 µ-law / A-law: known code words, round trips within the quantisation step, monotonic decoding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alawDecode, alawEncode, decode, encode, ulawDecode, ulawEncode } from '../../src/sip/conference/g711.js';

test('known values: µ-law 0xFF ↔ 0, 0x7F ↔ 0 (negative zero), 0x80 / 0x00 the extremes; A-law 0xD5 ↔ 8', () => {
  assert.equal(ulawDecode(0xff), 0);
  assert.equal(ulawEncode(0), 0xff);
  assert.equal(ulawDecode(0x7f), 0);
  assert.equal(ulawDecode(0x80), 32124);
  assert.equal(ulawDecode(0x00), -32124);
  assert.equal(ulawEncode(32767), 0x80);
  assert.equal(ulawEncode(-32768), 0x00);
  assert.equal(alawDecode(0xd5), 8);
  assert.equal(alawEncode(0), 0xd5);
  assert.equal(alawDecode(0x55), -8);
  assert.equal(alawDecode(0xaa), 32256);
  assert.equal(alawEncode(32767), 0xaa);
});

test('every code word decodes and re-encodes to itself (except µ-law negative zero)', () => {
  for (let c = 0; c < 256; c++) {
    if (c !== 0x7f) assert.equal(ulawEncode(ulawDecode(c)), c, `µ-law ${c}`);
    assert.equal(alawEncode(alawDecode(c)), c, `A-law ${c}`);
  }
});

test('round trip of every 16-bit sample stays within the segment step (logarithmic error)', () => {
  let worstU = 0;
  let worstA = 0;
  for (let s = -32768; s < 32768; s += 7) {
    const u = ulawDecode(ulawEncode(s));
    const a = alawDecode(alawEncode(s));
    const bound = Math.max(16, Math.abs(s) / 16); // 4 bits of mantissa: ≤ 1/32 of the value either way, plus 1 step
    const eu = Math.abs(u - Math.max(-32124, Math.min(32124, s)));
    const ea = Math.abs(a - Math.max(-32256, Math.min(32256, s)));
    assert.ok(eu <= bound + 8, `µ-law ${s} → ${u}`);
    assert.ok(ea <= bound + 8, `A-law ${s} → ${a}`);
    if (Math.abs(s) < 32000) {
      worstU = Math.max(worstU, eu / Math.max(1, Math.abs(s)));
      worstA = Math.max(worstA, ea / Math.max(1, Math.abs(s)));
    }
  }
  assert.ok(worstU > 0 && worstA > 0, 'the codec quantises (is not the identity)');
});

test('decoding is monotonic in the code words within each sign and frames convert whole', () => {
  const pos = Array.from({ length: 128 }, (_, i) => ulawDecode(0xff - i));
  for (let i = 1; i < pos.length; i++) assert.ok(pos[i]! > pos[i - 1]!, `µ-law step ${i}`);
  const pcm = new Int16Array(160).map((_, k) => Math.round(10000 * Math.sin((2 * Math.PI * 1000 * k) / 8000)));
  for (const codec of ['pcmu', 'pcma'] as const) {
    const back = decode(codec, encode(codec, pcm));
    for (let k = 0; k < 160; k++) assert.ok(Math.abs(back[k]! - pcm[k]!) <= 400, `${codec} sample ${k}`);
  }
});
