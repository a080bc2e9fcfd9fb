/**
 * sipp UAC scenarios of the conference tests, written into the test's work dir: INVITE with an SDP offer whose
 * audio port is the test's own UDP socket (`-key rtpport N`) and codecs (`-key codecs "0 8"`), 407, the INVITE with
 * digest credentials, then per scenario: `hold` (200, ACK, wait for our BYE, 200), `leave` (200, ACK, pause
 * `-d` ms, BYE, 200) or `refused` (the final answer `status`, ACK).
 * Injection file: SEQUENTIAL; user;[authentication username=user password=pw];room
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function invite(cseq: number, auth: boolean): string {
  return `  <send retrans="500">
    <![CDATA[

      INVITE sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field2]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: ${cseq} INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
${auth ? '      [field1]\n' : ''}      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio [rtpport] RTP/AVP [codecs]

    ]]>
  </send>
`;
}

/**
 * The ACK of a final answer. `inviteBranch`: the ACK of a non-2xx answer is part of the INVITE's transaction and
 * carries its branch (RFC 3261 §17.1.1.3): the INVITE is 3 scenario messages back. With a new branch the ACK misses
 * the transaction, our answer (407) is retransmitted and sipp takes its To tag as the dialog's, so its later BYE
 * names no dialog of ours (481).
 */
function ack(cseq: number, url: string, extra = '', inviteBranch = false): string {
  return `  <send>
    <![CDATA[

      ACK ${url} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=${inviteBranch ? '[branch-3]' : '[branch]'};rport
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field2]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ACK
${extra ? `      ${extra}\n` : ''}      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
`;
}

const BYE_IN = `  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="300"/>
`;

const BYE_OUT = `  <pause/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field2]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
`;

export function writeScenario(dir: string, kind: 'hold' | 'leave' | 'refused', status = 200): string {
  const head = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="conference ${kind}">
${invite(1, false)}  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
${ack(1, 'sip:[field2]@[remote_ip]:[remote_port]', '', true)}${invite(2, true)}  <recv response="100" optional="true"/>
`;
  let body: string;
  if (kind === 'refused') {
    body = `  <recv response="${status}"/>
${ack(2, 'sip:[field2]@[remote_ip]:[remote_port]', '', true)}`;
  } else {
    body = `  <recv response="200" rrs="true">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/AVP (0|8) 101" search_in="body" check_it="true" assign_to="sdp,codec"/>
    </action>
  </recv>
${ack(2, '[next_url]', '[routes]')}${kind === 'hold' ? BYE_IN : BYE_OUT}  <Reference variables="sdp,codec"/>
`;
  }
  const f = join(dir, `conf_${kind}_${status}.xml`);
  writeFileSync(f, head + body + '</scenario>\n');
  return f;
}
