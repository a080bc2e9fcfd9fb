/** The conference mix: each participant hears the sum of the others (not itself), clamped to 16 bits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beep, JOIN_TONE, mixFrames, rms } from '../../src/sip/conference/mix.js';

const frame = (v: number) => new Int16Array(160).fill(v);

test('sum minus own: three participants each get the other two', () => {
  const outs = mixFrames([frame(100), frame(-30), frame(7)]);
  assert.deepEqual(
    outs.map((o) => o[0]),
    [-23, 107, 70],
  );
  assert.ok(outs.every((o) => o.every((x) => x === o[0])));
});

test('a lone participant hears silence; a silent room stays silent', () => {
  assert.equal(rms(mixFrames([frame(5000)])[0]!), 0);
  assert.deepEqual(
    mixFrames([frame(0), frame(0)]).map((o) => rms(o)),
    [0, 0],
  );
});

test('clamping: loud others saturate at +32767 / -32768 instead of wrapping', () => {
  const up = mixFrames([frame(30000), frame(30000), frame(0)]);
  assert.equal(up[2]![0], 32767);
  assert.equal(up[0]![0], 30000);
  const down = mixFrames([frame(-30000), frame(-30000), frame(0)]);
  assert.equal(down[2]![0], -32768);
});

test('extra signals (tones) go to the named participant only', () => {
  const tone = beep(1000, 20);
  const outs = mixFrames([frame(0), frame(0)], [undefined, tone]);
  assert.equal(rms(outs[0]!), 0);
  assert.ok(rms(outs[1]!) > 1000);
  assert.equal(JOIN_TONE.length, 1600, 'join tone: 200 ms at 8 kHz');
});
