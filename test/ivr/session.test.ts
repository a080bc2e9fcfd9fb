/**
 * One caller's IVR media over real UDP sockets: the prompt arrives as PCMU RTP at the caller's address (latched to
 * where its RTP comes from), a key press interrupts it, and the digits typed as RFC 4733 events are collected.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IvrMedia, ivrAnswerSdp } from '../../src/sip/ivr/session.js';
import { PromptStore } from '../../src/sip/ivr/prompts.js';
import { parseRtpHeader } from '../../src/sip/ivr/dtmf.js';
import { freePort } from '../helpers/ports.js';

const work = mkdtempSync(join(tmpdir(), 'voxswitch-ivrmedia-'));
after(() => rmSync(work, { recursive: true, force: true }));

function event(seq: number, ts: number, ev: number, end: boolean): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x80;
  b[1] = 96;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ts, 4);
  b.writeUInt32BE(0xabcdef01, 8);
  b[12] = ev;
  b[13] = end ? 0x8a : 0x0a;
  b.writeUInt16BE(end ? 640 : 160, 14);
  return b;
}

test(
  'prompt RTP reaches the caller, a key interrupts it, digits by RFC 4733 are collected',
  { timeout: 30000 },
  async () => {
    const phone = createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', r));
    const audio: Buffer[] = [];
    phone.on('message', (m) => audio.push(m));
    const port = await freePort();
    const offer = Buffer.from('v=0\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n');
    const ivr = await IvrMedia.open({
      port,
      bindAddr: '127.0.0.1',
      // the SDP address is wrong on purpose: the first RTP packet of the phone latches the real one
      remote: { host: '127.0.0.1', port: 9 },
      codec: 'pcmu',
      offer,
      prompts: new PromptStore(join(work, 'prompts')),
    });
    try {
      assert.equal(ivr.dtmf.payloadType, 96);
      assert.match(ivrAnswerSdp('127.0.0.1', port, 'pcmu', 96).toString(), /m=audio \d+ RTP\/AVP 0 96\r\n/);
      const send = (b: Buffer) => phone.send(b, port, '127.0.0.1');
      send(event(1, 100, 0, true)); // '0' latches the address; typed ahead
      const asked = ivr.ask('enternumber', { maxDigits: 8, firstDigitMs: 3000, interDigitMs: 1500 });
      await new Promise((r) => setTimeout(r, 400));
      const during = audio.length;
      assert.ok(during >= 10, `the prompt is playing to the latched address (${during} frames)`);
      let seq = 2;
      for (const [i, ev] of [4, 2, 11].entries()) {
        const ts = 1000 + i * 800;
        send(event(seq++, ts, ev, false));
        for (let k = 0; k < 3; k++) send(event(seq++, ts, ev, true));
      }
      const got = await asked;
      assert.deepEqual(got, { kind: 'digits', digits: '042' });
      const frames = audio.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(audio.length - frames <= 2, 'the prompt stopped at the key press');
      const h = audio.map((a) => parseRtpHeader(a)!);
      assert.ok(h.every((x) => x.payloadType === 0 && audio[0]!.length === 172));
      assert.equal(h[0]!.marker, true);
      // the first frames are speech or tones, not silence
      assert.ok(audio.slice(0, 10).some((a) => a.subarray(12).some((v) => v !== 0xff && v !== 0x7f)));
      assert.equal(ivr.heard, '042#');
    } finally {
      await ivr.close();
      phone.close();
    }
  },
);
