// Parser throughput: node .build-sip/bench/sip/parser.js [seconds-per-case]
import { parseMessage, serialize, SipStreamFramer } from '../../src/sip/message/index.js';

const REGISTER = Buffer.from(
  'REGISTER sip:registrar.example.com SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n' +
    'Max-Forwards: 70\r\n' +
    'To: Bob <sip:bob@example.com>\r\n' +
    'From: Bob <sip:bob@example.com>;tag=456248\r\n' +
    'Call-ID: 843817637684230@998sdasdh09\r\n' +
    'CSeq: 1826 REGISTER\r\n' +
    'Contact: <sip:bob@192.0.2.10:5060;transport=udp>;expires=7200\r\n' +
    'User-Agent: VoxBench/1.0\r\n' +
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER\r\n' +
    'Content-Length: 0\r\n\r\n',
);

const SDP =
  'v=0\r\n' +
  'o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n' +
  's=-\r\n' +
  'c=IN IP4 192.0.2.101\r\n' +
  't=0 0\r\n' +
  'm=audio 49172 RTP/AVP 0 8 101\r\n' +
  'a=rtpmap:0 PCMU/8000\r\n' +
  'a=rtpmap:8 PCMA/8000\r\n' +
  'a=rtpmap:101 telephone-event/8000\r\n' +
  'a=fmtp:101 0-16\r\n' +
  'a=sendrecv\r\n';

const INVITE = Buffer.from(
  'INVITE sip:bob@biloxi.example.com SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n' +
    'Via: SIP/2.0/TCP proxy.atlanta.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.1\r\n' +
    'Max-Forwards: 69\r\n' +
    'Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n' +
    'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n' +
    'To: Bob <sip:bob@biloxi.example.com>\r\n' +
    'Call-ID: 3848276298220188511@atlanta.example.com\r\n' +
    'CSeq: 31862 INVITE\r\n' +
    'Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>\r\n' +
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK\r\n' +
    'Supported: 100rel, timer\r\n' +
    'User-Agent: VoxBench/1.0\r\n' +
    'Content-Type: application/sdp\r\n' +
    'Content-Length: ' +
    Buffer.byteLength(SDP) +
    '\r\n\r\n' +
    SDP,
);

function bench(name: string, fn: () => void, seconds: number, perCall = 1): number {
  for (let i = 0; i < 20000 / perCall; i++) fn(); // warm-up
  let n = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const t0 = process.hrtime.bigint();
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 1000 / perCall; i++) fn();
    n += 1000 / perCall;
    now = process.hrtime.bigint();
  }
  const rate = (n * perCall) / (Number(now - t0) / 1e9);
  console.log(
    `${name.padEnd(34)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} msg/s  ${(1e9 / rate).toFixed(0).padStart(6)} ns/msg`,
  );
  return rate;
}

const secs = Number(process.argv[2] ?? 2);
for (const [name, buf] of [
  ['REGISTER', REGISTER],
  ['INVITE+SDP', INVITE],
] as const) {
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(name + ' bench message does not parse: ' + r.reason);
}
console.log(`node ${process.version}, ${secs}s per case`);
bench(`parse REGISTER (${REGISTER.length} B)`, () => void parseMessage(REGISTER), secs);
bench(`parse INVITE+SDP (${INVITE.length} B)`, () => void parseMessage(INVITE), secs);
const inv = parseMessage(INVITE);
if (inv.ok) bench('serialize INVITE+SDP', () => void serialize(inv.msg), secs);
const stream = Buffer.concat(Array.from({ length: 100 }, () => INVITE));
const framer = new SipStreamFramer();
bench('frame+parse INVITE+SDP (TCP stream)', () => void framer.push(stream), secs, 100);
