/**
 * Shared set-up of the IVR tests: a server with its own SIP stack + B2BUA (options given), sipp UAC scenarios
 * written per test (INVITE with a PCMU + telephone-event offer, 183 early media, DTMF by RTP from a pcap or by
 * SIP INFO, then the routed call's 200 or the IVR's refusal), and the pcap of RFC 4733 events written from bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCallEnv, TestRouter, type CallEnv } from '../calls/helpers.js';

export async function startIvrEnv(
  options: Record<string, string>,
  router?: (s: CallEnv['services']) => TestRouter,
): Promise<CallEnv> {
  return startCallEnv({ options, router });
}

/**
 * A pcap (Ethernet, IPv4, UDP) of RFC 4733 key presses: per digit three packets while pressed (marker on the
 * first, durations 160/320/480) and the three redundant end packets (E bit, duration 640), 20 ms apart, 100 ms
 * between keys, one timestamp per key.
 */
export function dtmfPcap(file: string, digits: string, pt = 101): void {
  const recs: Buffer[] = [];
  const events = '0123456789*#';
  let t = 0;
  let seq = 1000;
  let ts = 48000;
  const add = (rtp: Buffer) => {
    const udpLen = 8 + rtp.length;
    const ipLen = 20 + udpLen;
    const frame = Buffer.alloc(14 + ipLen);
    frame.writeUInt16BE(0x0800, 12); // IPv4
    frame[14] = 0x45;
    frame.writeUInt16BE(ipLen, 16);
    frame[22] = 64; // TTL
    frame[23] = 17; // UDP
    Buffer.from([127, 0, 0, 1, 127, 0, 0, 1]).copy(frame, 26);
    frame.writeUInt16BE(6000, 34);
    frame.writeUInt16BE(6002, 36);
    frame.writeUInt16BE(udpLen, 38);
    rtp.copy(frame, 42);
    const h = Buffer.alloc(16);
    h.writeUInt32LE(Math.floor(t / 1000), 0);
    h.writeUInt32LE((t % 1000) * 1000, 4);
    h.writeUInt32LE(frame.length, 8);
    h.writeUInt32LE(frame.length, 12);
    recs.push(h, frame);
  };
  for (const d of digits) {
    const ev = events.indexOf(d);
    if (ev < 0) throw new Error(`no DTMF event for ${d}`);
    for (let i = 0; i < 6; i++) {
      const end = i >= 3;
      const rtp = Buffer.alloc(16);
      rtp[0] = 0x80;
      rtp[1] = (i === 0 ? 0x80 : 0) | pt;
      rtp.writeUInt16BE(seq++ & 0xffff, 2);
      rtp.writeUInt32BE(ts, 4);
      rtp.writeUInt32BE(0x5eed1234, 8);
      rtp[12] = ev;
      rtp[13] = (end ? 0x80 : 0) | 10;
      rtp.writeUInt16BE(end ? 640 : 160 * (i + 1), 14);
      add(rtp);
      t += 20;
    }
    ts += 1600;
    t += 100;
  }
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  writeFileSync(file, Buffer.concat([g, ...recs]));
}

const OFFER = `v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
`;

const hdr = (method: string, cseq: number, tagged: boolean, branch = '[branch]') => `
      ${method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=${branch};rport
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>${tagged ? '[peer_tag_param]' : ''}
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Max-Forwards: 70`;

export interface UacPlan {
  /** digest credentials first (a SIP user), else a plain INVITE (a trunk's caller) */
  auth: boolean;
  /** after the 183: an RTP pcap to play, or digits sent one by one as SIP INFO (dtmf-relay; ',' waits 1 s) */
  pcap?: string;
  info?: string;
  /** the final answer expected: 200 (the routed call: ACK, hold, BYE) or a refusal status */
  final: number;
  holdMs?: number;
  /** false: refused before any early media (no 183 expected) */
  early?: boolean;
}

/** A sipp UAC scenario for a call to the access number ([service]; field0 the caller, field1 the credentials). */
export function accessScenario(file: string, p: UacPlan): void {
  // one scenario message per entry: sipp's [branch-N] names the branch of the message N entries before
  const out: string[] = [];
  const invite = (cseq: number, creds: boolean) =>
    `<send retrans="500"><![CDATA[${hdr('INVITE', cseq, false)}
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      ${creds ? '[field1]' : 'User-Agent: sipp'}
      Content-Type: application/sdp
      Content-Length: [len]

${OFFER}
]]></send>`;
  const ackOf = (at: number, cseq: number, routes: boolean) =>
    `<send><![CDATA[${hdr('ACK', cseq, true, routes ? '[branch]' : `[branch-${out.length - at}]`)}${routes ? '\n      [routes]' : ''}
      Content-Length: 0
]]></send>`;
  let cseq = 1;
  if (p.auth) {
    out.push(invite(cseq, false), '<recv response="100" optional="true"/>', '<recv response="407" auth="true"/>');
    out.push(ackOf(0, cseq, false));
    cseq++;
  }
  const inviteAt = out.length;
  out.push(invite(cseq, p.auth), '<recv response="100" optional="true"/>');
  if (p.early !== false)
    out.push(
      '<recv response="183"><action><ereg regexp="telephone-event/8000" search_in="body" check_it="true" ' +
        'assign_to="te"/></action></recv>',
    );
  if (p.pcap) out.push(`<nop><action><exec play_pcap_audio="${p.pcap}"/></action></nop>`);
  const inviteCseq = cseq;
  for (const d of p.info ?? '') {
    if (d === ',') {
      out.push(`<pause milliseconds="1000"/>`);
      continue;
    }
    cseq++;
    out.push(`<pause milliseconds="150"/>`);
    out.push(`<send retrans="500"><![CDATA[${hdr('INFO', cseq, true)}
      Content-Type: application/dtmf-relay
      Content-Length: [len]

Signal=${d}
Duration=160
]]></send>`);
    out.push(`<recv response="200" crlf="true"/>`);
  }
  out.push('<recv response="180" optional="true"/>', '<recv response="183" optional="true"/>');
  if (p.final === 200) {
    out.push('<recv response="200" rrs="true"/>');
    out.push(ackOf(inviteAt, inviteCseq, true), `<pause milliseconds="${p.holdMs ?? 1000}"/>`);
    out.push(`<send retrans="500"><![CDATA[${hdr('BYE', cseq + 1, true)}
      [routes]
      Content-Length: 0
]]></send>`);
    out.push('<recv response="200" crlf="true"/>');
  } else {
    out.push(`<recv response="${p.final}"/>`);
    out.push(ackOf(inviteAt, inviteCseq, false));
  }
  const head = ['<?xml version="1.0" encoding="ISO-8859-1" ?>', '<scenario name="access number caller">'];
  const tail = p.early !== false ? ['<Reference variables="te"/>', '</scenario>'] : ['</scenario>'];
  writeFileSync(file, [...head, ...out, ...tail].join('\n'));
}

/** The injection file: `caller;[authentication …]`. */
export function callerCsv(dir: string, name: string, user: string, password: string): string {
  const f = join(dir, name);
  writeFileSync(f, `SEQUENTIAL\n${user};[authentication username=${user} password=${password}]\n`);
  return f;
}
