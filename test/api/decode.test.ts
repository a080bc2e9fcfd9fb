import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHttp, decodeMessage, DecodeError } from '../../src/api/decode/index.js';
import { encryptValue, decryptValue } from '../../src/api/decode/crypt.js';
import { bindParams } from '../../src/api/registry.js';
import { src } from '../helpers/source.js';

const S = src('127.0.0.1');
const O = { encryptKey: 'xorkey' };

async function http(method: string, target: string, ct = '', body = '') {
  const d = await decodeHttp(method, target, ct, Buffer.from(body), S, O);
  assert.equal(d.kind, 'request');
  return (d as { req: any }).req;
}

test('URL shapes of /mvapireq', async () => {
  for (const t of [
    '/mvapireq/?apientry=balance&authid=bob',
    '/mvapireq?apientry=balance&authid=bob',
    '/mvapireq/balance?authid=bob',
    '/x/mvapireq/balance/?authid=bob',
  ]) {
    const r = await http('GET', t);
    assert.equal(r.entry, 'balance', t);
    assert.equal(r.params.authid, 'bob', t);
    assert.equal(r.format, 'text');
  }
});

test('URI-encoding, + as space, keys case-insensitive, first value wins', async () => {
  const r = await http('GET', '/mvapireq/?APIENTRY=sendim&TXT=hello+w%C3%B6rld%21&bnum=a&bnum=b');
  assert.equal(r.entry, 'sendim');
  assert.equal(r.params.txt, 'hello wörld!');
  assert.equal(r.params.bnum, 'a');
});

test('POST bodies: urlencoded, JSON, XML, SOAP, ini, plain text', async () => {
  let r = await http(
    'POST',
    '/mvapireq/',
    'application/x-www-form-urlencoded',
    'apientry=balance&authid=bob&authpwd=p%26w',
  );
  assert.deepEqual([r.entry, r.params.authpwd, r.format], ['balance', 'p&w', 'html']);
  r = await http(
    'POST',
    '/mvapireq/',
    'application/json',
    '{"apientry":"balance","authid":"bob","n":5,"params":{"bnum":"123"}}',
  );
  assert.deepEqual(
    [r.entry, r.params.authid, r.params.n, r.params.bnum, r.format],
    ['balance', 'bob', '5', '123', 'json'],
  );
  r = await http(
    'POST',
    '/mvapireq/',
    'text/xml',
    '<?xml version="1.0"?><mvapireq><apientry>balance</apientry><authid>bob</authid></mvapireq>',
  );
  assert.deepEqual([r.entry, r.params.authid, r.format], ['balance', 'bob', 'xml']);
  r = await http('POST', '/mvapireq/', 'text/xml', '<balance><authid>bob</authid></balance>');
  assert.deepEqual([r.entry, r.params.authid], ['balance', 'bob']);
  r = await http(
    'POST',
    '/mvapireq/',
    'application/soap+xml',
    '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><m:balance xmlns:m="urn:x"><m:authid>bob</m:authid><m:authpwd>x&amp;y</m:authpwd></m:balance></soap:Body></soap:Envelope>',
  );
  assert.deepEqual([r.entry, r.params.authid, r.params.authpwd, r.format], ['balance', 'bob', 'x&y', 'soap']);
  r = await http(
    'POST',
    '/mvapireq/',
    'text/plain',
    'apientry=balance\r\nauthid=bob\r\n# comment\r\nauthpwd=a b c\r\n',
  );
  assert.deepEqual([r.entry, r.params.authid, r.params.authpwd], ['balance', 'bob', 'a b c']);
  r = await http('POST', '/mvapireq/', '', 'balance KEY bob "pass word"');
  assert.deepEqual(
    [r.entry, r.params.authkey, r.params.authid, r.params.authpwd],
    ['balance', 'KEY', 'bob', 'pass word'],
  );
  // URL params and body params merge
  r = await http('POST', '/mvapireq/?apientry=balance&format=json', 'application/x-www-form-urlencoded', 'authid=bob');
  assert.deepEqual([r.entry, r.params.authid, r.format], ['balance', 'bob', 'json']);
});

test('multipart form', async () => {
  const fd = new FormData();
  fd.set('apientry', 'balance');
  fd.set('authid', 'bob');
  const resp = new Response(fd);
  const body = Buffer.from(await resp.arrayBuffer());
  const r = await http('POST', '/mvapireq/', resp.headers.get('content-type')!, body.toString('latin1'));
  assert.deepEqual([r.entry, r.params.authid, r.format], ['balance', 'bob', 'html']);
});

test('positional param1…paramN: with and without apientry', async () => {
  let r = await http('GET', '/mvapireq/?param1=balance&param2=KEY&param3=bob&param4=pw&param5=x');
  assert.deepEqual(
    [r.entry, r.params.authkey, r.params.authid, r.params.authpwd, r.positional],
    ['balance', 'KEY', 'bob', 'pw', ['x']],
  );
  r = await http('GET', '/mvapireq/?apientry=p2p&param1=111&param2=222');
  assert.deepEqual(r.positional, ['111', '222']);
  const def = { name: 'p2p', params: ['bnum', 'cnum'], level: 12 as const, description: '' };
  assert.deepEqual(bindParams(def, r.params, r.positional).cnum, '222');
  // aliases
  const b = bindParams(
    { name: 'sms', params: ['anum', 'bnum', 'txt'], level: 12, description: '' },
    { from: '1', phone2: '2', message: 'hi' },
    [],
  );
  assert.deepEqual([b.anum, b.bnum, b.txt], ['1', '2', 'hi']);
});

test('TCP/UDP/WebSocket messages in every shape', () => {
  const m = (t: string) => {
    const d = decodeMessage(t, S, O);
    assert.equal(d.kind, 'request');
    return (d as { req: any }).req;
  };
  assert.equal(m('/mvapireq/?apientry=balance&authid=bob').params.authid, 'bob');
  assert.equal(m('mvapireq/?apientry=balance').entry, 'balance');
  assert.equal(m('http://example.com:8080/mvapireq/balance?authid=z').params.authid, 'z');
  assert.equal(m('apientry=balance&authid=bob').entry, 'balance');
  assert.equal(m('?apientry=balance').entry, 'balance');
  assert.equal(m('{"apientry":"info"}').format, 'json');
  assert.equal(m('<info/>').entry, 'info');
  assert.equal(m('keepalive').entry, 'keepalive');
  assert.equal(m('apientry=version\nauthid=admin').params.authid, 'admin');
});

test('XOR + Base64 encryption: whole request (mcrfs) and per value (oenc1_)', async () => {
  const enc = encryptValue('apientry=balance&authid=bob&authpwd=pw', 'xorkey');
  assert.ok(!enc.includes('='));
  assert.equal(decryptValue(enc, 'xorkey'), 'apientry=balance&authid=bob&authpwd=pw');
  let r = await http('GET', `/mvapireq/?mcrfs=${encodeURIComponent(enc)}`);
  assert.deepEqual([r.entry, r.params.authid, r.params.authpwd], ['balance', 'bob', 'pw']);
  const enc2 = encryptValue('/mvapireq/balance?authid=eve', 'xorkey');
  r = await http('GET', `/mvapireq/?mcrfs=${enc2}`);
  assert.deepEqual([r.entry, r.params.authid], ['balance', 'eve']);
  r = await http('GET', `/mvapireq/?apientry=balance&authid=bob&authpwd=oenc1_${encryptValue('s3cret!', 'xorkey')}`);
  assert.equal(r.params.authpwd, 's3cret!');
  await assert.rejects(decodeHttp('GET', '/mvapireq/?mcrfs=***', '', Buffer.alloc(0), S, O), DecodeError);
  await assert.rejects(
    decodeHttp('GET', `/mvapireq/?mcrfs=${enc}`, '', Buffer.alloc(0), S, { encryptKey: '' }),
    /httpapiencryptkey/,
  );
});

test('old API: xmapi/COMMAND?key=… mapped onto new commands', async () => {
  let r = await http('GET', '/xmapi/balance?key=K&username=bob&password=pw&now');
  assert.deepEqual(
    [r.entry, r.legacy, r.params.authkey, r.params.authid, r.params.authpwd],
    ['balance', true, 'K', 'bob', 'pw'],
  );
  r = await http('GET', '/xmapi/cb?key=K&username=bob&password=pw&number=3612345&now');
  assert.deepEqual([r.entry, r.params.num], ['callback', '3612345']);
  r = await http('GET', '/xmapi/p2p?key=K&pincode=1234&number1=111&number2=222&now');
  assert.deepEqual([r.entry, r.params.authid, r.params.bnum, r.params.cnum], ['p2p', '1234', '111', '222']);
  r = await http('GET', '/xmapi/adduser?key=K&username=new1&password=pw1&now');
  assert.deepEqual(
    [r.entry, r.params.u_username, r.params.u_password, r.params.authid],
    ['newuseri', 'new1', 'pw1', undefined],
  );
  r = await http('GET', '/xmapi/bogus?key=K');
  assert.ok(r.entry.startsWith('xmapi:'));
});

test('format and JSONP callback', async () => {
  assert.equal((await http('GET', '/mvapireq/?apientry=x&format=XML')).format, 'xml');
  const r = await http('GET', '/mvapireq/?apientry=x&callback=my.cb_1');
  assert.deepEqual([r.format, r.callback], ['jsonp', 'my.cb_1']);
  await assert.rejects(
    decodeHttp('GET', '/mvapireq/?apientry=x&callback=alert(1)', '', Buffer.alloc(0), S, O),
    /callback/,
  );
  await assert.rejects(
    decodeHttp('GET', '/mvapireq/?apientry=x&format=pdf', '', Buffer.alloc(0), S, O),
    /unknown format/,
  );
  const j = await decodeHttp(
    'GET',
    '/mvapireq/jppget?url=%2Fmvapireq%2F%3Fapientry%3Dversion&callback=f',
    '',
    Buffer.alloc(0),
    S,
    O,
  );
  assert.equal(j.kind, 'jppget');
});

test('malformed input gives DecodeError, never a crash', async () => {
  await assert.rejects(decodeHttp('POST', '/mvapireq/', 'application/json', Buffer.from('{"a":'), S, O), DecodeError);
  await assert.rejects(decodeHttp('POST', '/mvapireq/', 'text/xml', Buffer.from('<a><b></a>'), S, O), DecodeError);
  await assert.rejects(decodeHttp('POST', '/mvapireq/', 'application/json', Buffer.from('[1,2]'), S, O), DecodeError);
  assert.throws(() => decodeMessage('bal\u0000ance', S, O), DecodeError);
  assert.throws(() => decodeMessage('apientry=<script>', S, O), DecodeError);
  for (let i = 0; i < 300; i++) {
    const junk = Buffer.from(Array.from({ length: 1 + (i % 60) }, (_, j) => (i * 31 + j * 17) % 256)).toString(
      'latin1',
    );
    try {
      decodeMessage(junk, S, O);
    } catch (e) {
      assert.ok(e instanceof DecodeError, `unexpected ${String(e)}`);
    }
  }
});
