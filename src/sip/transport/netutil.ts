// Small helpers of the transport manager: addresses, the HTTP answer of a WebSocket port, deferred send errors.
import type http from 'node:http';
import { networkInterfaces } from 'node:os';

export function isUnspecified(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || a === '' || a === '[::]';
}

export function firstInterfaceIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  }
  return undefined;
}

/** What a plain HTTP request to a SIP WebSocket port gets. */
export function wsOnlyHandler(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'close' });
  res.end('SIP over WebSocket only (subprotocol sip)\n');
}

/** Send errors are reported asynchronously, as a socket's would be. */
export function deferError(onError: (err: Error) => void, err: Error): void {
  process.nextTick(onError, err);
}
