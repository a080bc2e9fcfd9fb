/**
 * SIP services with real peers over real sockets: sipp (REGISTER/MESSAGE with digest, wrong passwords), sipsak
 * (OPTIONS, MESSAGE), baresip (two accounts registering, seen online through the API), raw UDP (replayed nonce,
 * malformed, oversized). A test is skipped, with the reason printed, when its tool is missing (outside CI).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { req as apiReq, src as apiSrc } from '../helpers/source.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { parseMessage, getHeader, type SipResponse } from '../../src/sip/message/index.js';
import { authorize } from '../sip/services/fake.js';
import { skipWithout, toolPath, findTool } from '../helpers/tools.js';
import { runTool as spawnAndWait, startListening } from '../helpers/processes.js';

const SCEN = resolve(process.cwd(), 'test/sip/scenarios');
const LOCAL = apiSrc('127.0.0.1');
let t: TestServer;
let sip: SipServer | undefined;
let udpPort = 0;
let tcpPort = 0;
let work: string;

const SIPP = toolPath('sipp');
const SIPSAK = toolPath('sipsak');

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'voxswitch-sipe2e-'));
  t = await startTestServer({ authfailban: '0', sipmaxmessage: '4096' });
  const u = t.srv.services.users;
  for (const [n, p] of [
    ['alice', 'alicepw'],
    ['bob', 'bobpw'],
    ['carol', 'carolpw'],
    ['dave', 'davepw'],
  ])
    await u.create({ username: n!, password: p! });
  const o = t.srv.services.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
    isBanned: (ip) => t.srv.services.bans.isBanned(ip),
  });
  const s = new SipServer(t.srv.services, stack, {
    apiHandler: async (text, source) => {
      const r = await t.srv.gateway.handle(
        apiReq(text.trim().split(/\s+/)[0]!, {}, { ...LOCAL, ip: source.ip, transport: 'sip' }),
      );
      return `${r.ok ? 'OK' : 'ERROR'}: ${r.text}`;
    },
  });
  const l = await s.start();
  udpPort = l.find((x) => x.transport === 'udp')!.port;
  tcpPort = l.find((x) => x.transport === 'tcp')?.port ?? 0;
  sip = s;
  (t.srv.services as unknown as { sip: SipServer }).sip = s;
});
after(async () => {
  await sip?.stop();
  await t.stop();
  rmSync(work, { recursive: true, force: true });
});

const api = (e: string, p: Record<string, string>) => t.srv.gateway.handle(apiReq(e, p, LOCAL));

const runTool = (bin: string, args: string[], timeoutMs = 20000) => spawnAndWait(bin, args, work, timeoutMs);

/** baresip's module directory, beside the binary found on PATH (<prefix>/bin/baresip → <prefix>/lib/baresip/modules). */
function baresipModules(): string {
  const prefix = dirname(dirname(realpathSync(findTool('baresip')!)));
  const dirs = [join(prefix, 'lib/baresip/modules'), join(prefix, `lib/${process.arch}-linux-gnu/baresip/modules`)];
  return dirs.find((d) => existsSync(join(d, 'account.so'))) ?? dirs[0]!;
}

/** sipp injection file: `user;password[;target]` → `user;[authentication username=user password=pw][;target]`. */
function csv(name: string, lines: string[]): string {
  const f = join(work, name);
  const rows = lines.map((l) => {
    const [u, p, ...rest] = l.split(';');
    // (sipp digests uri=sip:remote_ip:remote_port, the Request-URI without the user: accepted, see sameUri)
    return [u, `[authentication username=${u} password=${p}]`, ...rest].join(';');
  });
  writeFileSync(f, ['SEQUENTIAL', ...rows].join('\n') + '\n');
  return f;
}

async function sipp(scenario: string, inf: string, calls: number, extra: string[] = []) {
  const r = await runTool(SIPP, [
    '127.0.0.1:' + udpPort,
    '-sf',
    join(SCEN, scenario),
    '-inf',
    inf,
    '-m',
    String(calls),
    '-r',
    '50',
    '-i',
    '127.0.0.1',
    '-t',
    'u1',
    '-nostdin',
    '-timeout',
    '15s',
    '-timeout_error',
    '-trace_err',
    '-error_file',
    join(work, `${scenario}.err`),
    ...extra,
  ]);
  const errFile = join(work, `${scenario}.err`);
  if (existsSync(errFile)) r.out = readFileSync(errFile, 'utf8').slice(-3000) + '\n' + r.out.slice(-1500);
  return r;
}

/** One UDP request/response exchange (the first final response). */
async function udpExchange(text: string, waitMs = 3000): Promise<SipResponse | null> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  return new Promise((resolveP) => {
    const timer = setTimeout(() => {
      sock.close();
      resolveP(null);
    }, waitMs);
    sock.on('message', (m) => {
      const r = parseMessage(m);
      if (r.ok && r.msg.type === 'response' && r.msg.status >= 200) {
        clearTimeout(timer);
        sock.close();
        resolveP(r.msg);
      }
    });
    sock.send(
      Buffer.from(text.replace(/SIPPORT/g, String(udpPort)).replace(/PORT/g, String(port))),
      udpPort,
      '127.0.0.1',
    );
  });
}

let n = 0;
function register(user: string, extra: string[] = [], cseq = 1, callId = `raw-${user}-${++n}`): string {
  return [
    `REGISTER sip:127.0.0.1:SIPPORT SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK-raw${++n}-${Date.now()};rport`,
    `From: <sip:${user}@127.0.0.1>;tag=r${n}`,
    `To: <sip:${user}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${user}@127.0.0.1:PORT>`,
    'Max-Forwards: 70',
    'Expires: 120',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

test('sipp: REGISTER with digest auth (401 → 200) for 3 users; they show online', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const r = await sipp('register_auth.xml', csv('users.csv', ['alice;alicepw', 'bob;bobpw', 'carol;carolpw']), 3);
  assert.equal(r.code, 0, r.out.slice(-2000));
  for (const u of ['alice', 'bob', 'carol']) assert.equal((await api('verifyuser', { userusername: u })).text, '2', u);
  const ep = await api('reguser', { usr: 'alice' });
  assert.equal(ep.rows?.[0]?.user_agent, 'sipp');
});

test('sipp: wrong passwords are answered 403', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const r = await sipp('register_wrong.xml', csv('wrong.csv', ['dave;WRONG', 'nosuchuser;x']), 2);
  assert.equal(r.code, 0, r.out.slice(-2000));
  assert.equal((await api('verifyuser', { userusername: 'dave' })).text, '1');
});

test('sipp: MESSAGE with digest to an online user is delivered to its phone (a sipp UAS) and answered 200', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  // bob's "phone": a sipp UAS on a port of its own; bob registers that contact over raw UDP with digest
  const phone = await startListening(
    SIPP,
    (port) => [
      '-sf',
      join(SCEN, 'message_uas.xml'),
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '15s',
      '-timeout_error',
      '-t',
      'u1',
    ],
    { cwd: work },
  );
  const phonePort = phone.port;
  const contact = `Contact: <sip:bob@127.0.0.1:${phonePort}>`;
  const reg = (extra: string[], cseq: number) =>
    register('bob', extra, cseq, 'bob-phone')
      .replace(/Contact: <sip:bob@127\.0\.0\.1:PORT>/, contact)
      .replace('Expires: 120', 'Expires: 300');
  const ch = await udpExchange(reg([], 1));
  assert.equal(ch?.status, 401);
  const auth = authorize(getHeader(ch!, 'WWW-Authenticate')!, 'bob', 'bobpw', 'REGISTER', `sip:127.0.0.1:${udpPort}`);
  const ok = await udpExchange(reg([`Authorization: ${auth}`], 2));
  assert.equal(ok?.status, 200);
  // the REGISTER came from a throw-away socket: the binding's source is that socket; point it to the phone
  const b = sip!.location.lookup('bob')[0]!;
  b.srcPort = phonePort;
  const r = await sipp('message_auth.xml', csv('msg.csv', ['alice;alicepw;bob']), 1);
  assert.equal(r.code, 0, r.out.slice(-2000));
  const u = await phone.done;
  assert.equal(u.code, 0, u.out.slice(-2000));
  assert.equal(await sip!.ims.pendingCount('bob'), 0);
});

test('sipp: MESSAGE to an offline user is stored (202) and returned by presence_set', async (c) => {
  if (skipWithout(c, 'sipp')) return;
  const r = await sipp('message_offline.xml', csv('msg2.csv', ['alice;alicepw;dave']), 1);
  assert.equal(r.code, 0, r.out.slice(-2000));
  assert.equal(await sip!.ims.pendingCount('dave'), 1);
  const p = await t.srv.gateway.handle(
    apiReq(
      'presence_set',
      { authkey: 'test-api-key-123', authid: 'dave', authpwd: 'davepw', pstatus: 'Online' },
      apiSrc('203.0.113.5'),
    ),
  );
  assert.equal(p.text, 'presence set to Online XOFFMESSAGE:alice:hello from sippXOFFMESSAGE:');
});

test('raw UDP: a replayed REGISTER (same nonce and nc) is refused 403; malformed → 400; oversized dropped', async () => {
  const ch = await udpExchange(register('carol'));
  assert.equal(ch?.status, 401);
  const auth = authorize(
    getHeader(ch!, 'WWW-Authenticate')!,
    'carol',
    'carolpw',
    'REGISTER',
    `sip:127.0.0.1:${udpPort}`,
  );
  assert.equal((await udpExchange(register('carol', [`Authorization: ${auth}`], 2, 'replay-1')))?.status, 200);
  assert.equal((await udpExchange(register('carol', [`Authorization: ${auth}`], 3, 'replay-1')))?.status, 403);
  const bad = await udpExchange(register('carol').replace('Max-Forwards: 70', 'Max-Forwards: seventy'));
  assert.equal(bad?.status, 400);
  const big = await udpExchange(register('carol', [`X-Pad: ${'a'.repeat(5000)}`]), 1500);
  assert.ok(big === null || big.status === 513 || big.status === 400, `oversized: ${big?.status}`);
});

test('sipsak: OPTIONS answered 200; REGISTER (usrloc mode) and MESSAGE with digest', async (c) => {
  if (skipWithout(c, 'sipsak')) return;
  // sipsak 0.9.8 truncates 5-digit ports in -s URIs: the port goes in -r
  const o = await runTool(SIPSAK, ['-s', 'sip:alice@127.0.0.1', '-r', String(udpPort), '-vv']);
  assert.equal(o.code, 0, o.out);
  assert.match(o.out, /200 OK/);
  assert.match(o.out, /Allow: .*MESSAGE/);
  const u = await runTool(SIPSAK, [
    '-U',
    '-x',
    '120',
    '-s',
    'sip:carol@127.0.0.1',
    '-r',
    String(udpPort),
    '-u',
    'carol',
    '-a',
    'carolpw',
    '-vv',
  ]);
  assert.equal(u.code, 0, u.out);
  assert.match(u.out, /usrloc tests completed successful/);
  const wrong = await runTool(SIPSAK, [
    '-U',
    '-x',
    '120',
    '-s',
    'sip:carol@127.0.0.1',
    '-r',
    String(udpPort),
    '-u',
    'carol',
    '-a',
    'nope',
    '-vv',
  ]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /403 Forbidden/);
  // (sipsak -M crashes with SIGSEGV in 0.9.8.1 before sending anything: a MESSAGE from a file is used instead)
  const file = join(work, 'msg.sip');
  const body = 'hi from sipsak';
  writeFileSync(
    file,
    [
      'MESSAGE sip:dave@127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-sipsak1',
      'From: <sip:alice@127.0.0.1>;tag=s1',
      'To: <sip:dave@127.0.0.1>',
      'Call-ID: sipsak-msg-1@127.0.0.1',
      'CSeq: 1 MESSAGE',
      'Max-Forwards: 70',
      'Content-Type: text/plain',
      `Content-Length: ${body.length}`,
      '',
      body,
    ].join('\n'),
  );
  const before = await sip!.ims.pendingCount('dave');
  const m = await runTool(SIPSAK, [
    '-f',
    file,
    '-s',
    'sip:dave@127.0.0.1',
    '-r',
    String(udpPort),
    '-u',
    'alice',
    '-a',
    'alicepw',
    '-vv',
  ]);
  assert.match(m.out, /SIP\/2.0 202 Accepted/, m.out);
  assert.equal(await sip!.ims.pendingCount('dave'), before + 1);
});

test('baresip: two accounts register (digest) and the API shows them online (verifyuser 2)', async (c) => {
  if (skipWithout(c, 'baresip')) return;
  const dir = join(work, 'baresip');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'accounts'),
    [
      `<sip:alice@127.0.0.1:${udpPort};transport=udp>;auth_pass=alicepw;regint=60`,
      `<sip:dave@127.0.0.1:${udpPort};transport=udp>;auth_pass=davepw;regint=60`,
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'config'),
    [
      'sip_listen 127.0.0.1:0',
      `module_path ${baresipModules()}`,
      'module_app account.so',
      'audio_player nothing',
      'audio_source nothing',
      '',
    ].join('\n'),
  );
  // make alice and dave offline first (other tests may have registered alice)
  sip!.location.removeAll('alice', 'x', 0);
  const p = spawn(toolPath('baresip'), ['-f', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  try {
    const end = Date.now() + 10000;
    let online = false;
    while (Date.now() < end) {
      const a = (await api('verifyuser', { userusername: 'alice' })).text;
      const d = (await api('verifyuser', { userusername: 'dave' })).text;
      if (a === '2' && d === '2') {
        online = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(online, `baresip accounts did not register:\n${out.slice(-3000)}`);
    const ep = await api('endpoints', {});
    assert.ok(
      ep.rows!.some((r) => r.user === 'dave' && /baresip/i.test(String(r.user_agent))),
      JSON.stringify(ep.rows),
    );
  } finally {
    const exited = new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
    p.kill('SIGTERM');
    const late = setTimeout(() => p.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(late);
  }
});

test('TCP: REGISTER with digest over one connection; the binding is tcp with a connId and goes when it closes', async () => {
  assert.ok(tcpPort, 'the SIP stack has a TCP listener');
  const sock = connect(tcpPort, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  let buf = '';
  const waiters: Array<(m: SipResponse) => void> = [];
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
      const r = parseMessage(Buffer.from(buf.slice(0, i + 4), 'latin1'), { stream: true });
      buf = buf.slice(i + 4);
      if (r.ok && r.msg.type === 'response' && r.msg.status >= 200) waiters.shift()?.(r.msg);
    }
  });
  const lport = sock.localPort!;
  const send = (text: string) =>
    new Promise<SipResponse>((res) => {
      waiters.push(res);
      sock.write(
        text
          .replace(/SIPPORT/g, String(tcpPort))
          .replace(/PORT/g, String(lport))
          .replace(/SIP\/2\.0\/UDP/g, 'SIP/2.0/TCP')
          .replace(/<sip:(\w+)@127\.0\.0\.1:(\d+)>/, '<sip:$1@127.0.0.1:$2;transport=tcp>'),
      );
    });
  const ch = await send(register('dave', [], 1, 'tcp-1'));
  assert.equal(ch.status, 401);
  const auth = authorize(getHeader(ch, 'WWW-Authenticate')!, 'dave', 'davepw', 'REGISTER', `sip:127.0.0.1:${tcpPort}`);
  const ok = await send(register('dave', [`Authorization: ${auth}`], 2, 'tcp-1'));
  assert.equal(ok.status, 200);
  const b = sip!.location.lookup('dave').find((x) => x.transport === 'tcp');
  assert.ok(b?.connId, 'tcp binding with a connection id');
  sock.destroy();
  const end = Date.now() + 3000;
  while (Date.now() < end && sip!.location.lookup('dave').some((x) => x.transport === 'tcp'))
    await new Promise((r) => setTimeout(r, 20));
  assert.equal(
    sip!.location.lookup('dave').some((x) => x.transport === 'tcp'),
    false,
    'binding dropped with its connection',
  );
});
