// Fuzz-style robustness: random mutations of the torture messages must never throw.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import {
  parseMessage,
  SipStreamFramer,
  serialize,
  validateRequest,
  validateResponse,
} from '../../src/sip/message/index.js';
import { INTERNAL_ERROR } from '../../src/sip/message/parser.js';
import { DATA_DIR, load } from './helpers.js';
import { mulberry32 as rng } from '../helpers/random.js';

const INTERESTING = [
  0x00, 0x0d, 0x0a, 0x20, 0x09, 0x22, 0x3c, 0x3e, 0x3a, 0x3b, 0x2c, 0x3d, 0x40, 0x5b, 0x5d, 0x25, 0x5c, 0x2f, 0x3f,
  0xff, 0xc3, 0x80, 0x2d, 0x30, 0x39,
];

function mutate(src: Buffer, r: () => number): Buffer {
  let b = Buffer.from(src);
  const n = 1 + Math.floor(r() * 8);
  for (let k = 0; k < n; k++) {
    const op = Math.floor(r() * 7);
    const pos = Math.floor(r() * (b.length + 1));
    switch (op) {
      case 0: // flip a byte
        if (b.length) b[Math.min(pos, b.length - 1)] = Math.floor(r() * 256);
        break;
      case 1: // interesting byte
        if (b.length) b[Math.min(pos, b.length - 1)] = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
        break;
      case 2: // delete a range
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + Math.floor(r() * 16))]);
        break;
      case 3: // insert interesting bytes
        b = Buffer.concat([
          b.subarray(0, pos),
          Buffer.from(
            Array.from({ length: 1 + Math.floor(r() * 4) }, () => INTERESTING[Math.floor(r() * INTERESTING.length)]!),
          ),
          b.subarray(pos),
        ]);
        break;
      case 4: // duplicate a range
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos, pos + Math.floor(r() * 64)), b.subarray(pos)]);
        break;
      case 5: // truncate
        b = b.subarray(0, pos);
        break;
      default: // big digits
        b = Buffer.concat([b.subarray(0, pos), Buffer.from('99999999999999999999'), b.subarray(pos)]);
    }
  }
  return b;
}

const files: Buffer[] = [];
for (const d of ['rfc4475', 'rfc5118'])
  for (const f of readdirSync(path.join(DATA_DIR, d)).sort()) files.push(load(d + '/' + f));

describe('fuzz', () => {
  it('parseMessage / validate / serialize never throw on 20000 mutated messages', () => {
    const r = rng(0x5eed);
    let ok = 0;
    let rejected = 0;
    for (let i = 0; i < 20000; i++) {
      const buf = mutate(files[i % files.length]!, r);
      const res = parseMessage(buf);
      assert.equal(typeof res.ok, 'boolean');
      if (res.ok) {
        ok++;
        if (res.msg.type === 'request') validateRequest(res.msg);
        else validateResponse(res.msg);
        // a parsed message re-serializes and re-parses
        const again = parseMessage(serialize(res.msg));
        assert.ok(again.ok, 'reparse failed for mutation ' + i);
      } else {
        rejected++;
        assert.ok(res.status >= 400 && res.status <= 599);
        assert.equal(typeof res.reason, 'string');
        assert.notEqual(res.reason, INTERNAL_ERROR, 'internal exception on mutation ' + i);
      }
    }
    assert.ok(ok > 1000, 'some mutations still parse: ' + ok);
    assert.ok(rejected > 1000, 'some mutations are rejected: ' + rejected);
  });

  it('the stream framer never throws on mutated streams cut at random points', () => {
    const r = rng(42);
    for (let i = 0; i < 2000; i++) {
      const f = new SipStreamFramer({ maxMessageSize: 4096 });
      const stream = Buffer.concat([mutate(files[i % files.length]!, r), files[(i * 7) % files.length]!]);
      let pos = 0;
      while (pos < stream.length) {
        const step = 1 + Math.floor(r() * 300);
        for (const ev of f.push(stream.subarray(pos, pos + step))) {
          if (ev.type === 'message' && !ev.result.ok) assert.notEqual(ev.result.reason, INTERNAL_ERROR);
        }
        pos += step;
      }
    }
  });

  it('random garbage never throws', () => {
    const r = rng(7);
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(r() * 600);
      const b = Buffer.alloc(len);
      for (let k = 0; k < len; k++) b[k] = Math.floor(r() * 256);
      if (i % 3 === 0 && len > 8) b.write('INVITE sip:a@b SIP/2.0\r\n', 0);
      if (i % 3 === 1 && len > 8) b.write('SIP/2.0 200 OK\r\n', 0);
      const res = parseMessage(b);
      assert.equal(typeof res.ok, 'boolean');
      if (!res.ok) assert.notEqual(res.reason, INTERNAL_ERROR);
    }
  });
});

describe('framer chunking invariance', () => {
  it('the same frames come out whatever the chunk boundaries', () => {
    const r = rng(99);
    const good: Buffer[] = [];
    for (const f of files) {
      const p = parseMessage(f);
      if (p.ok) good.push(serialize(p.msg));
    }
    for (let round = 0; round < 200; round++) {
      const parts: Buffer[] = [];
      for (let k = 0; k < 5; k++) {
        if (r() < 0.3) parts.push(Buffer.from(r() < 0.5 ? '\r\n\r\n' : '\r\n'));
        parts.push(good[Math.floor(r() * good.length)]!);
      }
      const stream = Buffer.concat(parts);
      const whole = new SipStreamFramer().push(stream).filter((e) => e.type === 'message');
      const f = new SipStreamFramer();
      const pieces: Buffer[] = [];
      let pos = 0;
      while (pos < stream.length) {
        const step = 1 + Math.floor(r() * 200);
        for (const ev of f.push(stream.subarray(pos, pos + step))) if (ev.type === 'message') pieces.push(ev.data);
        pos += step;
      }
      assert.equal(pieces.length, 5);
      assert.deepEqual(
        pieces,
        whole.map((e) => (e.type === 'message' ? e.data : Buffer.alloc(0))),
      );
      assert.equal(f.buffered, 0);
    }
  });
});
