/** Prompts: WAV files made by espeak-ng + sox (or tones), read back; played as paced RTP with correct headers. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrompts, parseWav, PromptStore, PROMPTS, toneSamples, ulawWav } from '../../src/sip/ivr/prompts.js';
import { RtpPlayer } from '../../src/sip/ivr/player.js';
import { parseRtpHeader } from '../../src/sip/ivr/dtmf.js';
import { skipWithout } from '../helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'voxswitch-prompts-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('WAV: µ-law written and read back; 16-bit PCM read; wrong rate and non-WAV refused', () => {
  const tone = toneSamples('goodbye');
  assert.equal(tone.length, 700 * 8);
  const back = parseWav(ulawWav(tone));
  assert.equal(back.length, tone.length);
  // µ-law is lossy: within a few percent of full scale
  for (let i = 0; i < tone.length; i += 97) assert.ok(Math.abs(back[i]! - tone[i]!) < 600, `sample ${i}`);
  const pcm = ulawWav(new Int16Array(4));
  pcm.writeUInt16LE(1, 20); // format PCM
  pcm.writeUInt16LE(16, 34);
  assert.equal(parseWav(pcm).length, 2);
  const wide = ulawWav(new Int16Array(4));
  wide.writeUInt32LE(16000, 24);
  assert.throws(() => parseWav(wide), /8000 Hz mono/);
  assert.throws(() => parseWav(Buffer.from('hello world, not a wav')), /not a WAV/);
});

test('espeak-ng + sox make every prompt as 8 kHz µ-law speech', { timeout: 60000 }, async (t) => {
  if (skipWithout(t, 'espeak-ng', 'sox')) return;
  const dir = join(work, 'speech');
  assert.equal(await ensurePrompts(dir), 'espeak-ng');
  for (const name of Object.keys(PROMPTS)) {
    const buf = readFileSync(join(dir, `${name}.wav`));
    assert.equal(buf.readUInt16LE(20), 7, `${name}: µ-law`);
    const s = parseWav(buf);
    assert.ok(s.length > 4000, `${name}: at least half a second (${s.length} samples)`);
    let energy = 0;
    for (const v of s) energy += Math.abs(v);
    assert.ok(energy / s.length > 200, `${name}: not silence`);
  }
  assert.equal(await ensurePrompts(dir), 'present');
});

test('an unreadable prompt file plays its tones; prompts are cached per codec', async () => {
  const dir = join(work, 'broken');
  await ensurePrompts(dir);
  writeFileSync(join(dir, 'wrongpin.wav'), 'garbage');
  const warned: string[] = [];
  const store = new PromptStore(dir, { warn: (_o, m) => warned.push(m), info: () => undefined });
  const a = await store.get('wrongpin', 'pcma');
  assert.equal(a.length, toneSamples('wrongpin').length);
  assert.match(warned.join(), /unreadable/);
  assert.equal(await store.get('wrongpin', 'pcma'), a);
});

test('RTP player: 20 ms frames, seq +1, timestamp +160, marker on the first frame, padded with silence', async () => {
  const rx = createSocket('udp4');
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  const tx = createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', r));
  const got: Array<{ at: number; pkt: Buffer }> = [];
  rx.on('message', (pkt) => got.push({ at: Date.now(), pkt }));
  const player = new RtpPlayer(tx, { host: '127.0.0.1', port: rx.address().port }, 8, 0xd5);
  const audio = Buffer.alloc(160 * 9 + 40, 0x11);
  const t0 = Date.now();
  await player.play(audio);
  const took = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 50));
  rx.close();
  tx.close();
  assert.equal(got.length, 10);
  assert.ok(took >= 170 && took < 600, `10 frames paced over ~180 ms (took ${took})`);
  const hs = got.map((g) => parseRtpHeader(g.pkt)!);
  assert.ok(hs.every((h) => h.payloadType === 8 && h.ssrc === player.ssrc));
  assert.deepEqual(
    hs.map((h) => h.marker),
    [true, false, false, false, false, false, false, false, false, false],
  );
  for (let i = 1; i < hs.length; i++) {
    assert.equal(hs[i]!.seq, (hs[0]!.seq + i) & 0xffff);
    assert.equal(hs[i]!.timestamp, (hs[0]!.timestamp + 160 * i) >>> 0);
  }
  assert.ok(got.every((g) => g.pkt.length === 172));
  const last = got[9]!.pkt;
  assert.equal(last[12 + 39], 0x11);
  assert.equal(last[12 + 40], 0xd5); // A-law silence after the audio
});
