/**
 * Gateway reachability (gwrst): an out-of-dialog OPTIONS to a gateway; any final response means it answers (a 4xx
 * such as 401/403/405 still proves a SIP peer is there), no response within the wait means it does not.
 */
import { generateCallId, generateTag, uriHostPart, type SipHeader, type SipRequest } from '../message/index.js';
import type { SipStackLike } from '../stack.js';
import { finalResponse } from '../transaction/final.js';
import type { Gateway } from '../../domain/routing/types.js';

export interface PingResult {
  gateway: string;
  target: string;
  reachable: boolean;
  status: number | null;
  reason: string;
  ms: number;
}

export async function pingGateway(
  stack: Pick<SipStackLike, 'request' | 'localAddress'>,
  g: Gateway,
  waitMs = 5000,
): Promise<PingResult> {
  const target = { transport: g.transport, host: g.host, port: g.port };
  const where = `${g.transport}:${g.host}:${g.port}`;
  const local = stack.localAddress(g.transport);
  const ours = local ? uriHostPart(local.host) : '127.0.0.1';
  const host = g.host.includes(':') && !g.host.startsWith('[') ? `[${g.host}]` : g.host;
  const uri = `sip:${host}:${g.port}${g.transport === 'udp' ? '' : `;transport=${g.transport}`}`;
  const headers: SipHeader[] = [
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<sip:voxswitch@${ours}>;tag=${generateTag()}` },
    { name: 'To', value: `<${uri}>` },
    { name: 'Call-ID', value: generateCallId() },
    { name: 'CSeq', value: '1 OPTIONS' },
    { name: 'Accept', value: 'application/sdp' },
    { name: 'Content-Length', value: '0' },
  ];
  const req: SipRequest = {
    type: 'request',
    method: 'OPTIONS',
    uri,
    version: 'SIP/2.0',
    headers,
    body: Buffer.alloc(0),
  };
  const t0 = Date.now();
  try {
    const res = await finalResponse(stack.request(req, target), waitMs);
    const ms = Date.now() - t0;
    if (!res) return { gateway: g.name, target: where, reachable: false, status: null, reason: 'no answer', ms };
    return { gateway: g.name, target: where, reachable: true, status: res.status, reason: res.reason, ms };
  } catch (e) {
    const reason = `not sent: ${(e as Error).message}`;
    return { gateway: g.name, target: where, reachable: false, status: null, reason, ms: Date.now() - t0 };
  }
}
