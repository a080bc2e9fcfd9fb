/**
 * Raw TCP (and TLS) line sessions: each CR/LF-terminated line is one request, answered in order with the
 * encoded answer and CR/LF; the session lasts until close/exit/quit, an idle timeout, or a protocol error.
 */
import type { Socket } from 'node:net';
import type { ApiGateway } from '../gateway.js';
import type { Source, TransportKind } from '../types.js';
import { normalizeIp } from '../../domain/security/ip.js';

const IDLE_MS = 10 * 60_000;

export function attachLineSession(
  socket: Socket,
  first: Buffer,
  kind: TransportKind,
  gateway: ApiGateway,
  maxLine: () => number,
  onError: (e: unknown) => void,
  lineTimeoutMs = 15_000,
): void {
  const source: Source = {
    transport: kind,
    ip: normalizeIp(socket.remoteAddress ?? ''),
    port: socket.remotePort ?? 0,
    browser: false,
  };
  let buf: Buffer = Buffer.alloc(0);
  let chain = Promise.resolve();
  let closing = false;
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  // A line must be complete within lineTimeoutMs of its first byte (a trickled line cannot hold the socket).
  let partial: NodeJS.Timeout | undefined;
  const watchPartial = () => {
    if (buf.length === 0) {
      if (partial) clearTimeout(partial);
      partial = undefined;
    } else partial ??= setTimeout(() => socket.destroy(), lineTimeoutMs);
  };
  socket.once('close', () => partial && clearTimeout(partial));
  socket.on('error', () => socket.destroy());

  const push = (chunk: Buffer) => {
    if (closing) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(10)) >= 0) {
      const line = buf.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      buf = buf.subarray(nl + 1);
      if (partial) clearTimeout(partial);
      partial = undefined;
      if (!line.trim()) continue;
      enqueue(line);
    }
    watchPartial();
    if (buf.length > maxLine()) {
      closing = true;
      socket.end(`request line longer than maxrequestsize (${maxLine()} bytes)\r\nERROR\r\n`);
    }
  };

  const enqueue = (line: string) => {
    chain = chain
      .then(async () => {
        if (socket.destroyed) return;
        const { enc, result } = await gateway.message(line, source);
        if (socket.destroyed) return;
        if (result.close) {
          closing = true;
          socket.end(enc.body + '\r\n');
        } else socket.write(enc.body + '\r\n');
      })
      .catch(onError);
  };

  socket.on('data', push);
  push(first);
}
