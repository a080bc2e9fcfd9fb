/** HTTP/1.0 and 1.1 (and HTTPS) for the API, plus the WebSocket upgrade for URIs containing "mvstwebsock". */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiGateway } from '../gateway.js';
import { httpSource, isBrowserRequest } from './source.js';
import { normalizeIp } from '../../domain/security/ip.js';
import type { Source } from '../types.js';

export interface HttpDeps {
  gateway: ApiGateway;
  maxBody: () => number;
  ownHosts: () => Set<string>;
  onError: (e: unknown) => void;
  /** Time to receive the request line and headers, and the whole request (ms). */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** The web console (src/api/console), answering every path below /console. */
  console?: { handle(req: IncomingMessage, res: ServerResponse): Promise<void> };
  /** /metrics and /health (src/api/probes): answers true when it took the request. */
  probes?: { handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> };
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      resolve('too-large');
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type',
};

export function createApiHttpServer(d: HttpDeps): Server {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });

  const requestTimeout = d.requestTimeoutMs ?? 30_000;
  const server = createServer(
    {
      keepAliveTimeout: 30_000,
      requestTimeout,
      headersTimeout: Math.min(d.headersTimeoutMs ?? 15_000, requestTimeout),
      // how often expired requests are looked for: a fraction of the shortest timeout
      connectionsCheckingInterval: Math.max(250, Math.min(d.headersTimeoutMs ?? 15_000, 30_000) / 4),
    },
    (req, res) => {
      handle(req, res).catch((e) => {
        d.onError(e);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\r\nERROR');
      });
    },
  );

  // Sockets reach this server through emit('connection') (sniffed on the shared port): it never listens, so node's
  // check for requests past headersTimeout/requestTimeout, started on 'listening', is started here.
  server.emit('listening');

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const target = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (d.console && /^\/console(\/|\?|$)/.test(target)) return d.console.handle(req, res);
    if (d.probes && /^\/(metrics|health)(\?|$)/.test(target) && (await d.probes.handle(req, res))) return;
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'access-control-max-age': '600' });
      res.end();
      return;
    }
    if (/^\/(mvapireq\/)?openapi\.json(\?|$)/i.test(target) && (method === 'GET' || method === 'HEAD')) {
      const body = JSON.stringify(d.gateway.openApi());
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...CORS });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    if (!/mvapireq|xmapi\//i.test(target)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('voxswitch: the API is at /mvapireq/?apientry=NAME (see docs/api.md)\r\nERROR');
      return;
    }
    if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, POST, OPTIONS' });
      res.end(`method ${method} is not supported: use GET or POST\r\nERROR`);
      return;
    }
    const body = method === 'POST' ? await readBody(req, d.maxBody()) : Buffer.alloc(0);
    if (body === 'too-large') {
      res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`request body larger than maxrequestsize (${d.maxBody()} bytes)\r\nERROR`);
      return;
    }
    const source = httpSource(req, secure ? 'https' : 'http', d.ownHosts());
    const { enc, result } = await d.gateway.http(method, target, req.headers['content-type'] ?? '', body, source);
    const headers: Record<string, string> = req.headers.origin
      ? { 'content-type': enc.contentType, 'cache-control': 'no-store', ...CORS }
      : { 'content-type': enc.contentType, 'cache-control': 'no-store' };
    if (result.close) headers.connection = 'close';
    res.writeHead(enc.status, enc.status === 499 ? 'API Error' : undefined, headers);
    res.end(method === 'HEAD' ? undefined : enc.body);
  }

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (!(req.url ?? '').toLowerCase().includes('mvstwebsock')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => attachWs(ws, req));
  });

  function attachWs(ws: WebSocket, req: IncomingMessage): void {
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const source: Source = {
      transport: secure ? 'wss' : 'ws',
      ip: normalizeIp(req.socket.remoteAddress ?? ''),
      port: req.socket.remotePort ?? 0,
      browser: isBrowserRequest(req, d.ownHosts()),
    };
    let chain = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      chain = chain
        .then(async () => {
          const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
          const text = isBinary && buf.includes(0) ? '\u0000' : buf.toString('utf8');
          const { enc, result } = await d.gateway.message(text, source);
          if (ws.readyState === ws.OPEN) ws.send(enc.body);
          if (result.close) ws.close(1000, 'bye');
        })
        .catch(d.onError);
    });
    ws.on('error', () => ws.terminate());
  }

  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // destroyed once the answer is written: a client that never reads must not keep the socket half-open
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (socket.writable)
      socket.end(
        timedOut
          ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n' +
              'request timeout\r\nERROR'
          : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n' +
              'malformed HTTP request\r\nERROR',
        () => socket.destroy(),
      );
    else socket.destroy();
  });
  return server;
}
