import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser } from 'fast-xml-parser';
import { encode } from '../../src/api/encode/index.js';
import { ok, fail } from '../../src/api/types.js';

const bal = ok('12.50 USD', { fields: { credit: '12.50', currency: 'USD' } });
const table = ok('2 rows', {
  columns: ['username', 'credit'],
  rows: [
    { username: 'bob', credit: 1 },
    { username: 'a<b>&"c', credit: null },
  ],
});

test('text ends with OK or ERROR; cleartext has no suffix', () => {
  assert.equal(encode(bal, { format: 'text', strict: false }).body, '12.50 USD\r\nOK');
  assert.equal(encode(fail('bad'), { format: 'text', strict: false }).body, 'bad\r\nERROR');
  assert.equal(encode(ok(''), { format: 'text', strict: false }).body, 'OK');
  assert.equal(encode(bal, { format: 'cleartext', strict: false }).body, '12.50 USD');
  assert.equal(
    encode(table, { format: 'text', strict: false }).body,
    '2 rows\r\nusername\tcredit\r\nbob\t1\r\na<b>&"c\t\r\nOK',
  );
});

test('HTTP status: 200 always, or the API code with httpstrictresponse', () => {
  assert.equal(encode(fail('x'), { format: 'text', strict: false }).status, 200);
  assert.equal(encode(fail('x'), { format: 'text', strict: true }).status, 499);
  assert.equal(encode(bal, { format: 'json', strict: true }).status, 200);
});

test('json and jsonp', () => {
  const j = JSON.parse(encode(table, { format: 'json', strict: false }).body);
  assert.deepEqual(j, {
    code: 200,
    status: 'OK',
    text: '2 rows',
    columns: ['username', 'credit'],
    rows: [
      { username: 'bob', credit: 1 },
      { username: 'a<b>&"c', credit: null },
    ],
  });
  const p = encode(bal, { format: 'jsonp', callback: 'cb', strict: false });
  assert.equal(p.contentType, 'application/javascript; charset=utf-8');
  let got: unknown;
  new Function('cb', p.body)((v: unknown) => (got = v));
  assert.deepEqual(got, { code: 200, status: 'OK', text: '12.50 USD', fields: { credit: '12.50', currency: 'USD' } });
});

test('xml and soap parse back with the same values', () => {
  const x = new XMLParser({ parseTagValue: false, removeNSPrefix: true });
  const doc = x.parse(encode(table, { format: 'xml', strict: false }).body);
  assert.equal(doc.response.code, '200');
  assert.equal(doc.response.status, 'OK');
  assert.equal(doc.response.rows.row[1].username, 'a<b>&"c');
  const soap = x.parse(encode(fail('no'), { format: 'soap', strict: false }).body);
  assert.equal(soap.Envelope.Body.mvapiresponse.status, 'ERROR');
  assert.equal(soap.Envelope.Body.mvapiresponse.code, '499');
  const f = x.parse(encode(bal, { format: 'xml', strict: false }).body);
  assert.equal(f.response.fields.credit, '12.50');
});

test('html escapes and renders a table', () => {
  const h = encode(table, { format: 'html', strict: false }).body;
  assert.match(h, /<table class="rows"><thead><tr><th>username<\/th><th>credit<\/th>/);
  assert.match(h, /a&lt;b&gt;&amp;&quot;c/);
  assert.ok(!h.includes('a<b>'));
  assert.match(h, /<p class="status" data-code="200">OK<\/p>/);
});

test('old API answers OK / ERROR:reason with the old HTTP codes when strict', () => {
  assert.equal(encode(bal, { format: 'text', legacy: true, strict: false }).body, 'OK:12.50 USD');
  const e = encode(fail('wrong', { legacyStatus: 403 }), { format: 'text', legacy: true, strict: true });
  assert.deepEqual([e.body, e.status], ['ERROR:wrong', 403]);
  assert.equal(
    encode(fail('wrong', { legacyStatus: 403 }), { format: 'text', legacy: true, strict: false }).status,
    200,
  );
});
