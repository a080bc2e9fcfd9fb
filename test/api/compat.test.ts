/** Compatibility pieces for stock Mizu clients, unit by unit: request-line repair, URL lines, one-line answers, fallbacks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sniff, repairRequestLine } from '../../src/api/transports/sniff.js';
import { decodeMessage } from '../../src/api/decode/index.js';
import { encode } from '../../src/api/encode/index.js';
import { bindParams, type CommandDef } from '../../src/api/registry.js';
import { ok, fail } from '../../src/api/types.js';
import { src } from '../helpers/source.js';

const S = src('127.0.0.1');
const O = { encryptKey: '' };
const b = (s: string) => Buffer.from(s, 'latin1');

test('sniff: an API request line with raw spaces is HTTP; other spaced lines stay lines', () => {
  assert.equal(sniff(b('GET /mvapireq/?apientry=db&txt=SELECT id FROM tb_users HTTP/1.1\r\nHost: x\r\n')), 'http');
  assert.equal(sniff(b('GET /xmapi/sms?key=1&message=hi there&now HTTP/1.0\r\n')), 'http');
  assert.equal(sniff(b('GET /other page HTTP/1.1\r\n')), 'line');
  assert.equal(sniff(b('balance KEY alice pw\r\n')), 'line');
  assert.equal(sniff(b('/mvapireq/?apientry=db&txt=SELECT 1\r\n')), 'line');
  // the first line still arriving: wait for its end, also past raw spaces
  assert.equal(sniff(b('GET /mvapireq/?apientry=db&txt=SELECT id FROM')), 'more');
  assert.equal(sniff(b('GET /mvap')), 'more');
  assert.equal(sniff(b('balance KEY alice')), 'line');
  assert.equal(sniff(Buffer.alloc(9000, 0x41)), 'line');
});

test('repairRequestLine: percent-encodes the target of the first line only, keeps the rest', () => {
  const rest = 'Host: x\r\n\r\n';
  const fixed = repairRequestLine(b(`GET /mvapireq/?apientry=db&txt=SELECT id\tFROM tb_users HTTP/1.1\r\n${rest}`));
  assert.equal(
    fixed?.toString('latin1'),
    `GET /mvapireq/?apientry=db&txt=SELECT%20id%09FROM%20tb_users HTTP/1.1\r\n${rest}`,
  );
  const utf8 = Buffer.concat([b('GET /mvapireq/?apientry=sendim&txt='), Buffer.from('hé', 'utf8'), b(' HTTP/1.0\n\n')]);
  assert.equal(repairRequestLine(utf8)?.toString('latin1'), 'GET /mvapireq/?apientry=sendim&txt=h%C3%A9 HTTP/1.0\n\n');
  // nothing to repair, not an API target, no full line yet
  assert.equal(repairRequestLine(b('GET /mvapireq/?apientry=apitest HTTP/1.1\r\n\r\n')), undefined);
  assert.equal(repairRequestLine(b('GET /a b HTTP/1.1\r\n\r\n')), undefined);
  assert.equal(repairRequestLine(b('GET /mvapireq/?txt=a b')), undefined);
});

test('URL lines over TCP/UDP/WebSocket may hold raw spaces and a METHOD … HTTP/1.x wrapper', () => {
  for (const line of [
    '/mvapireq/?apientry=db&txt=SELECT id FROM tb_users',
    'GET /mvapireq/?apientry=db&txt=SELECT id FROM tb_users HTTP/1.1',
    'http://host:8080/mvapireq/?apientry=db&txt=SELECT id FROM tb_users',
  ]) {
    const d = decodeMessage(line, S, O);
    assert.equal(d.kind, 'request');
    const r = (d as { req: { entry: string; params: Record<string, string> } }).req;
    assert.equal(r.entry, 'db', line);
    assert.equal(r.params.txt, 'SELECT id FROM tb_users', line);
  }
  const old = decodeMessage('xmapi/balance?key=K&username=bob&password=my pw&now', S, O);
  const r = (old as { req: { entry: string; params: Record<string, string>; legacy?: boolean } }).req;
  assert.deepEqual([r.entry, r.params.authpwd, r.legacy], ['balance', 'my pw', true]);
  // positional plain text is unchanged
  const p = decodeMessage('balance KEY alice pw', S, O);
  assert.equal((p as { req: { params: Record<string, string> } }).req.params.authid, 'alice');
});

test('oneLine answers: OK: / ERROR: on one line in text, text alone in cleartext, rows kept in json/xml', () => {
  const r = ok('puserlist: alice:Away,bob:online', {
    rows: [{ user: 'alice', status: 'Away' }],
    oneLine: true,
  });
  const strict = false;
  assert.equal(encode(r, { format: 'text', strict }).body, 'OK: puserlist: alice:Away,bob:online');
  assert.equal(encode(r, { format: 'cleartext', strict }).body, 'puserlist: alice:Away,bob:online');
  assert.equal(
    encode(fail('presence_get needs x', { oneLine: true }), { format: 'text', strict }).body,
    'ERROR: presence_get needs x',
  );
  assert.equal(JSON.parse(encode(r, { format: 'json', strict }).body).rows.length, 1);
  assert.match(encode(r, { format: 'xml', strict }).body, /<rows count="1">/);
  // a line break in the text cannot start another line
  assert.equal(encode(ok('a\r\nb', { oneLine: true }), { format: 'text', strict }).body, 'OK: a b');
  // other answers keep the suffix shape
  assert.equal(encode(ok('7.25 EUR'), { format: 'text', strict }).body, '7.25 EUR\r\nOK');
});

test('declared fallbacks: the declared name wins, then positional, then the fallback and its aliases', () => {
  const def: CommandDef = {
    name: 'rating',
    params: ['bnum'],
    fallbacks: { bnum: ['anum'] },
    level: 12,
    description: '',
  };
  assert.equal(bindParams(def, { anum: '36' }, []).bnum, '36');
  assert.equal(bindParams(def, { phone1: '36' }, []).bnum, '36');
  assert.equal(bindParams(def, { anum: '36', bnum: '44' }, []).bnum, '44');
  assert.equal(bindParams(def, { to: '44', anum: '36' }, []).bnum, '44');
  assert.equal(bindParams(def, { anum: '36' }, ['49']).bnum, '49');
  assert.equal(bindParams(def, {}, []).bnum, undefined);
});
