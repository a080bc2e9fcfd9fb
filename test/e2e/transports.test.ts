/** The API through real clients on every transport: curl (HTTP/HTTPS), raw TCP lines, UDP, WebSocket. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, ADMIN_PASSWORD, authMd5, freshSalt, type TestServer } from '../helpers/server.js';
import { curl, LineClient, udpAsk, wsOpen, wsAsk } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';
import { encryptValue } from '../../src/api/decode/crypt.js';

let t: TestServer;
const BOB = `authkey=${API_KEY}&authid=bob&authpwd=bobpw`;

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', httpapiencryptkey: 'k3y' });
  const r = await curl([
    t.url(`/mvapireq/?apientry=newuseri&u_username=bob&u_password=bobpw&u_credit=7.25&u_currency=EUR`),
  ]);
  assert.equal(r.body, 'user bob created with id 2\r\nOK');
});
after(() => t.stop());

test('HTTP GET with md5 auth via curl: text answer ending with OK', async () => {
  const salt = freshSalt();
  const r = await curl([
    t.url(
      `/mvapireq/?apientry=balance&authkey=${API_KEY}&authid=bob&authmd5=${authMd5('bob', 'bobpw', salt)}&authsalt=${salt}`,
    ),
  ]);
  assert.equal(r.status, 200);
  assert.equal(r.body, '7.25 EUR\r\nOK');
  assert.match(r.headers, /content-type: text\/plain/i);
});

test('HTTP/1.0 and 1.1 keep-alive: two requests on one connection', async () => {
  const r10 = await curl(['--http1.0', t.url(`/mvapireq/?apientry=balance&${BOB}`)]);
  assert.equal(r10.body, '7.25 EUR\r\nOK');
  const { stdout, stderr } = await run('curl', [
    '-sS',
    '-v',
    '--max-time',
    '10',
    t.url(`/mvapireq/?apientry=balance&${BOB}`),
    t.url(`/mvapireq/?apientry=keepalive`),
  ]);
  assert.equal(stdout, '7.25 EUR\r\nOKkeepalive\r\nOK');
  assert.match(stderr, /Re-using existing connection/);
});

test('POST JSON gets JSON, XML gets XML, SOAP gets SOAP, form gets HTML', async () => {
  const j = await curl([
    '-H',
    'content-type: application/json',
    '-d',
    JSON.stringify({ apientry: 'balance', authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' }),
    t.url('/mvapireq/'),
  ]);
  assert.deepEqual(JSON.parse(j.body), {
    code: 200,
    status: 'OK',
    text: '7.25 EUR',
    fields: { credit: '7.25', currency: 'EUR' },
  });
  const x = await curl([
    '-H',
    'content-type: text/xml',
    '-d',
    `<mvapireq><apientry>balance</apientry><authkey>${API_KEY}</authkey><authid>bob</authid><authpwd>bobpw</authpwd></mvapireq>`,
    t.url('/mvapireq/'),
  ]);
  assert.match(
    x.body,
    /^<\?xml version="1.0" encoding="UTF-8"\?><response><code>200<\/code><status>OK<\/status><text>7.25 EUR<\/text>/,
  );
  const s = await curl([
    '-H',
    'content-type: application/soap+xml',
    '-d',
    `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><balance><authkey>${API_KEY}</authkey><authid>bob</authid><authpwd>bobpw</authpwd></balance></s:Body></s:Envelope>`,
    t.url('/mvapireq/'),
  ]);
  assert.match(s.body, /<soap:Envelope .*<mvapiresponse><code>200<\/code><status>OK<\/status>/);
  const f = await curl([
    '-F',
    'apientry=balance',
    '-F',
    `authkey=${API_KEY}`,
    '-F',
    'authid=bob',
    '-F',
    'authpwd=bobpw',
    t.url('/mvapireq/'),
  ]);
  assert.match(f.body, /<!DOCTYPE html>.*7\.25 EUR.*>OK<\/p>/s);
  const ini = await curl([
    '-H',
    'content-type: text/plain',
    '--data-binary',
    `apientry=balance\nauthkey=${API_KEY}\nauthid=bob\nauthpwd=bobpw\nformat=cleartext\n`,
    t.url('/mvapireq/'),
  ]);
  assert.equal(ini.body, '7.25 EUR');
});

test('httpstrictresponse puts the code in the HTTP status', async () => {
  const c = t.srv.services.config;
  assert.equal(
    (await curl([t.url('/mvapireq/?apientry=balance&authid=bob&authpwd=wrong&authkey=' + API_KEY)])).status,
    200,
  );
  c.persist({ httpstrictresponse: '1' });
  try {
    const bad = await curl([t.url('/mvapireq/?apientry=nosuch')]);
    assert.equal(bad.status, 499);
    assert.match(bad.body, /ERROR$/);
    assert.equal((await curl([t.url(`/mvapireq/?apientry=balance&${BOB}`)])).status, 200);
    // old API codes
    assert.equal((await curl([t.url(`/xmapi/balance?key=wrong&username=bob&password=bobpw&now`)])).status, 403);
    assert.equal((await curl([t.url(`/xmapi/whatever?key=${API_KEY}&now`)])).status, 406);
    const undecodable = await curl([t.url(`/xmapi/balance?key=${API_KEY}&username=oenc1_@@&now`)]);
    assert.deepEqual([undecodable.status, undecodable.body.startsWith('ERROR:')], [406, true]);
  } finally {
    c.persist({ httpstrictresponse: '0' });
    await t.srv.services.bans.remove('all');
  }
});

test('old API xmapi answers OK:… / ERROR:…', async () => {
  const r = await curl([t.url(`/xmapi/balance?key=${API_KEY}&username=bob&password=bobpw&now`)]);
  assert.equal(r.body, 'OK:7.25 EUR');
  const e = await curl([t.url(`/xmapi/sms?key=${API_KEY}&username=bob&password=bobpw&number=123&txt=hi&now`)]);
  assert.match(e.body, /^ERROR:no SMS gateway is configured: an admin adds one with addsmsgateway/);
});

test('JSONP: format=jsonp with callback, and jppget', async () => {
  const r = await curl([t.url(`/mvapireq/?apientry=balance&${BOB}&format=jsonp&callback=show`)]);
  assert.match(r.body, /^\/\*\*\/show\(\{"code":200,"status":"OK","text":"7.25 EUR"/);
  const inner = encodeURIComponent(`/mvapireq/?apientry=balance&${BOB}`);
  const j = await curl([t.url(`/mvapireq/jppget?url=${inner}&callback=got`)]);
  assert.match(j.body, /^\/\*\*\/got\(\{"code":200,"status":"OK","text":"7.25 EUR"/);
  const remote = await curl([t.url(`/mvapireq/jppget?url=${encodeURIComponent('http://example.org/x')}&callback=got`)]);
  assert.match(remote.body, /remote URLs need enablejsonp=2/);
  t.srv.services.config.persist({ enablejsonp: '0' });
  try {
    assert.match((await curl([t.url(`/mvapireq/jppget?url=${inner}&callback=got`)])).body, /JSONP is disabled/);
    const off = await curl([t.url(`/mvapireq/?apientry=balance&${BOB}&callback=show`)]);
    assert.equal(off.body, 'JSONP is disabled (set enablejsonp=1 for local or 2 for remote URLs)\r\nERROR');
  } finally {
    t.srv.services.config.persist({ enablejsonp: '1' });
  }
});

test('encrypted requests over HTTP', async () => {
  const enc = encryptValue(`apientry=balance&${BOB}`, 'k3y');
  assert.equal((await curl([t.url(`/mvapireq/?mcrfs=${enc}`)])).body, '7.25 EUR\r\nOK');
  assert.equal(
    (
      await curl([
        t.url(
          `/mvapireq/?apientry=balance&authkey=${API_KEY}&authid=bob&authpwd=oenc1_${encryptValue('bobpw', 'k3y')}`,
        ),
      ])
    ).body,
    '7.25 EUR\r\nOK',
  );
});

test('a web page on localhost gets no IP trust (Origin, foreign Host / DNS rebinding)', async () => {
  assert.match((await curl([t.url('/mvapireq/?apientry=info')])).body, /OK$/);
  assert.match(
    (await curl(['-H', 'Origin: http://evil.example', t.url('/mvapireq/?apientry=info')])).body,
    /authkey required\r\nERROR/,
  );
  assert.match((await curl(['-H', 'Host: rebind.attacker.example', t.url('/mvapireq/?apientry=info')])).body, /ERROR$/);
  assert.match((await curl(['-H', 'Sec-Fetch-Site: cross-site', t.url('/mvapireq/?apientry=info')])).body, /ERROR$/);
});

test('raw TCP lines on the same port: several requests, keepalive, quit closes', async () => {
  const c = await LineClient.open(t.port);
  try {
    assert.equal(await c.ask(`/mvapireq/?apientry=balance&${BOB}`), '7.25 EUR\r\nOK');
    assert.equal(await c.ask(`balance ${API_KEY} bob bobpw`), '7.25 EUR\r\nOK');
    assert.equal(await c.ask('keepalive'), 'keepalive\r\nOK');
    assert.equal(
      await c.ask(
        '{"apientry":"balance","authkey":"' + API_KEY + '","authid":"bob","authpwd":"bobpw","format":"text"}',
      ),
      '7.25 EUR\r\nOK',
    );
    assert.match(await c.ask('nonsense-command'), /unknown API "nonsense-command".*\r\nERROR$/);
    c.send('apientry=balance&format=json&' + BOB + '\r\n');
    assert.match(await c.nextLine(), /^\{"code":200,.*"text":"7.25 EUR"/);
    assert.equal(await c.ask('quit'), 'bye\r\nOK');
    await eventually(() => c.closed, 'the server closed the connection');
    assert.equal(c.closed, true);
  } finally {
    c.close();
  }
});

test('TCP: binary garbage and an oversized line get ERROR; the server keeps serving', async () => {
  const c = await LineClient.open(t.port);
  c.send('\u0000\u0001\u0002bin\r\n');
  assert.match(await c.answer(), /binary data is not a valid request\r\nERROR/);
  c.close();
  t.srv.services.config.persist({ maxrequestsize: '1024' });
  try {
    const d = await LineClient.open(t.port);
    d.send('x'.repeat(5000));
    assert.match(await d.answer(), /longer than maxrequestsize/);
    d.close();
    const big = await curl([
      '-H',
      'content-type: text/plain',
      '--data-binary',
      'a='.padEnd(4000, 'x'),
      t.url('/mvapireq/'),
    ]);
    assert.equal(big.status, 413);
  } finally {
    t.srv.services.config.persist({ maxrequestsize: '1048576' });
  }
  assert.equal((await curl([t.url(`/mvapireq/?apientry=balance&${BOB}`)])).body, '7.25 EUR\r\nOK');
  const raw = await LineClient.open(t.port);
  raw.send('GET /mvapireq/?apientry=keepalive HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE\r\n\r\n');
  await new Promise((r) => setTimeout(r, 300));
  raw.close();
  assert.equal((await curl([t.url(`/mvapireq/?apientry=keepalive`)])).body, 'keepalive\r\nOK');
});

test('UDP datagrams on the same port number', async () => {
  assert.equal(await udpAsk(t.port, `/mvapireq/?apientry=balance&${BOB}`), '7.25 EUR\r\nOK');
  assert.equal(
    await udpAsk(t.port, `apientry=balance\nauthkey=${API_KEY}\nauthid=bob\nauthpwd=bobpw`),
    '7.25 EUR\r\nOK',
  );
  assert.match(await udpAsk(t.port, 'x'.repeat(1600)), /larger than 1490 bytes/);
  assert.match(await udpAsk(t.port, Buffer.from([0, 1, 2, 255])), /ERROR$/);
});

test('WebSocket when the URI contains mvstwebsock', async () => {
  const ws = await wsOpen(`ws://127.0.0.1:${t.port}/mvapireq/mvstwebsock`);
  try {
    assert.equal(await wsAsk(ws, `/mvapireq/?apientry=balance&${BOB}`), '7.25 EUR\r\nOK');
    assert.match(
      await wsAsk(ws, JSON.stringify({ apientry: 'balance', authkey: API_KEY, authid: 'bob', authpwd: 'bobpw' })),
      /"text":"7.25 EUR"/,
    );
    // no Origin: a local tool, trusted
    assert.match(await wsAsk(ws, 'info'), /OK$/);
  } finally {
    ws.close();
  }
  const page = await wsOpen(`ws://127.0.0.1:${t.port}/mvstwebsock`, { origin: 'http://evil.example' });
  try {
    assert.match(await wsAsk(page, 'info'), /ERROR$/);
  } finally {
    page.close();
  }
});

test('TLS: HTTPS, secure WebSocket and TLS lines with a gencert certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-tls-'));
  try {
    await run(process.execPath, ['bin/voxswitch.js', 'gencert', '--data-dir', dir]);
    const s = await startTestServer({ usetls: 'true', tlsport: '0', apilimitip: '0' }, dir);
    try {
      const tport = s.srv.services.listeners.find((l) => l.kind.startsWith('tls'))!.port;
      const r = await curl([
        '-k',
        `https://127.0.0.1:${tport}/mvapireq/?apientry=balance&authkey=${API_KEY}&authid=admin&authpwd=${ADMIN_PASSWORD}`,
      ]);
      assert.equal(r.body, '0.00 USD\r\nOK');
      const ws = await wsOpen(`wss://127.0.0.1:${tport}/mvstwebsock`, { rejectUnauthorized: false });
      assert.equal(await wsAsk(ws, 'keepalive'), 'keepalive\r\nOK');
      ws.close();
      const { stdout: out } = await run('bash', [
        '-c',
        `(printf 'keepalive\\r\\nquit\\r\\n'; sleep 2) | timeout 5 openssl s_client -quiet -connect 127.0.0.1:${tport} 2>/dev/null`,
      ]);
      assert.equal(out, 'keepalive\r\nOK\r\nbye\r\nOK\r\n');
    } finally {
      await s.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('balance reflects a ledger change at once (no stale cache)', async () => {
  const before = await curl([t.url(`/mvapireq/?apientry=balance&${BOB}`)]);
  assert.equal(before.body, '7.25 EUR\r\nOK');
  const add = await curl([t.url('/mvapireq/?apientry=addcredit&username=bob&credit=1.5')]);
  assert.match(add.body, /added 1\.50 EUR to bob/);
  assert.equal((await curl([t.url(`/mvapireq/?apientry=balance&${BOB}`)])).body, '8.75 EUR\r\nOK');
  const back = await curl([t.url('/mvapireq/?apientry=addcredit&username=bob&credit=-1.5')]);
  assert.match(back.body, /OK$/);
  assert.equal((await curl([t.url(`/mvapireq/?apientry=balance&${BOB}`)])).body, '7.25 EUR\r\nOK');
});
