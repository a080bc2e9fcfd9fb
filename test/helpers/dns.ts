/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP, an ephemeral port) for RFC 3263 tests: answers from a table of
 * records (dns-packet encodes them), NXDOMAIN for a name it does not know, NOERROR with no answer for a known name
 * without records of the type asked. Counts the queries per name and type (to see the cache at work).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as packet from 'dns-packet';

export type DnsRecord = packet.Answer;

export interface DnsServer {
  port: number;
  /** ip:port for Resolver.setServers / the dnsservers option. */
  address: string;
  records: DnsRecord[];
  /** queries seen, as "TYPE name" */
  queries: string[];
  close(): Promise<void>;
}

export async function startDns(records: DnsRecord[]): Promise<DnsServer> {
  const sock: Socket = createSocket('udp4');
  const srv: DnsServer = {
    port: 0,
    address: '',
    records,
    queries: [],
    close: () => new Promise((r) => sock.close(() => r())),
  };
  sock.on('message', (msg, rinfo) => {
    let q: packet.Packet;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    srv.queries.push(`${question.type} ${name}`);
    const known = srv.records.filter((r) => r.name.toLowerCase() === name);
    const answers = known.filter((r) => r.type === question.type);
    const res = packet.encode({
      id: q.id,
      type: 'response',
      flags: packet.AUTHORITATIVE_ANSWER | (known.length ? 0 : 3), // rcode 3: NXDOMAIN
      questions: [question],
      answers,
    });
    sock.send(res, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  srv.port = (sock.address() as AddressInfo).port;
  srv.address = `127.0.0.1:${srv.port}`;
  return srv;
}
