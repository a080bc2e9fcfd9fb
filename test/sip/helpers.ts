import { readFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/sip/message/index.js';
import type { ParseResult, SipRequest, SipResponse } from '../../src/sip/message/index.js';

/** The RFC 4475 / RFC 5118 torture messages, kept with the tests (see test/fixtures/sip/README.md). */
export const DATA_DIR = path.resolve(process.cwd(), 'test/fixtures/sip');

export function load(rel: string): Buffer {
  return readFileSync(path.join(DATA_DIR, rel));
}

/** Loads an RFC 4475 file by short name. */
export function t4475(name: string): Buffer {
  return load('rfc4475/' + name + '.dat');
}

export function t5118(name: string): Buffer {
  return load('rfc5118/' + name);
}

export function parse(buf: Buffer): ParseResult {
  return parseMessage(buf);
}

export function req(buf: Buffer): SipRequest {
  const r = parseMessage(buf);
  if (!r.ok) assert.fail('expected a parsed message, got ' + r.status + ' ' + r.reason);
  assert.equal(r.msg.type, 'request');
  return r.msg as SipRequest;
}

export function res(buf: Buffer): SipResponse {
  const r = parseMessage(buf);
  if (!r.ok) assert.fail('expected a parsed message, got ' + r.status + ' ' + r.reason);
  assert.equal(r.msg.type, 'response');
  return r.msg as SipResponse;
}

export function rejected(buf: Buffer): Extract<ParseResult, { ok: false }> {
  const r = parseMessage(buf);
  if (r.ok) assert.fail('expected a rejection');
  return r;
}
