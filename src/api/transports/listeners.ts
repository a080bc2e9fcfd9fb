/**
 * All API listeners: on `mainaport` one TCP server that serves HTTP, WebSocket and raw lines (sniffed by their
 * first bytes) and one UDP socket; with `usetls`, a TLS server on `tlsport` serving HTTPS, secure WebSocket and
 * TLS lines the same way.
 */
import { createServer as createTcpServer, type Server as TcpServer, type Socket, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import type { Socket as UdpSocket } from 'node:dgram';
import type { ApiGateway } from '../gateway.js';
import type { Services, Listener } from '../../services.js';
import { createApiHttpServer } from './http.js';
import type { WebConsole } from '../console/routes.js';
import type { ProbeRoutes } from '../probes/routes.js';
import { attachLineSession } from './line.js';
import { createUdpApi } from './udp.js';
import { repairRequestLine, sniff } from './sniff.js';

/** A new connection must show what it speaks (its first bytes) within this long, and within apiheadertimeout. */
const SNIFF_TIMEOUT_MS = 10_000;

export class ListenError extends Error {}

function listenHint(e: NodeJS.ErrnoException, what: string, port: number): ListenError {
  if (e.code === 'EACCES') {
    return new ListenError(
      `cannot listen on ${what} port ${port}: permission denied. Ports below 1024 need root or the capability ` +
        `(sudo setcap cap_net_bind_service=+ep "$(command -v node)"), or choose another port, e.g. --set ` +
        `mainaport=8080`,
    );
  }
  if (e.code === 'EADDRINUSE')
    return new ListenError(
      `cannot listen on ${what} port ${port}: it is already in use (another server?); choose another with --set`,
    );
  return new ListenError(`cannot listen on ${what} port ${port}: ${e.message}`);
}

export class ApiListeners {
  private tcp?: TcpServer;
  private tls?: TlsServer;
  private udp?: UdpSocket;
  private http: HttpServer;
  private sockets = new Set<Socket>();

  constructor(
    private readonly s: Services,
    private readonly gateway: ApiGateway,
    webConsole?: WebConsole,
    probes?: ProbeRoutes,
  ) {
    this.http = createApiHttpServer({
      gateway,
      console: webConsole,
      probes,
      maxBody: () => s.config.get('maxrequestsize'),
      ownHosts: () => s.ownHosts(),
      onError: (e) => s.log.error({ err: e }, 'API transport error'),
      headersTimeoutMs: s.config.get('apiheadertimeout') * 1000,
      requestTimeoutMs: s.config.get('apirequesttimeout') * 1000,
    });
  }

  private onSocket(socket: Socket, tls: boolean): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf: Buffer = Buffer.alloc(0);
    const sniffMs = Math.min(SNIFF_TIMEOUT_MS, this.s.config.get('apiheadertimeout') * 1000);
    const timer = setTimeout(() => socket.destroy(), sniffMs);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const kind = sniff(buf);
      if (kind === 'more') return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (kind === 'http') {
        socket.pause();
        socket.unshift(repairRequestLine(buf) ?? buf);
        this.http.emit('connection', socket);
        socket.resume();
      } else {
        attachLineSession(
          socket,
          buf,
          tls ? 'tls' : 'tcp',
          this.gateway,
          () => this.s.config.get('maxrequestsize'),
          (e) => this.s.log.error({ err: e }, 'API line error'),
          this.s.config.get('apiheadertimeout') * 1000,
        );
      }
    };
    socket.on('data', onData);
  }

  async start(): Promise<Listener[]> {
    const o = this.s.config.options;
    const out: Listener[] = [];
    if (!o.usemainaport) return out;
    const host = o.apibindaddr;
    this.tcp = createTcpServer({ pauseOnConnect: false }, (sock) => this.onSocket(sock, false));
    const port = await new Promise<number>((res, rej) => {
      this.tcp!.once('error', (e) => rej(listenHint(e as NodeJS.ErrnoException, 'API', o.mainaport)));
      this.tcp!.listen(o.mainaport, host, () => res((this.tcp!.address() as AddressInfo).port));
    });
    out.push({ kind: 'tcp (http, websocket, lines)', address: host, port });
    this.udp = createUdpApi(host, this.gateway, (e) => this.s.log.warn({ err: e }, 'UDP API error'));
    await new Promise<void>((res, rej) => {
      this.udp!.once('error', (e) => rej(listenHint(e as NodeJS.ErrnoException, 'UDP API', port)));
      this.udp!.bind(port, host, () => res());
    });
    out.push({ kind: 'udp', address: host, port });
    if (o.usetls) {
      const certFile = resolve(this.s.config.dataDir, o.tlscert);
      const keyFile = resolve(this.s.config.dataDir, o.tlskey);
      let cert: Buffer, key: Buffer;
      try {
        cert = readFileSync(certFile);
        key = readFileSync(keyFile);
      } catch (e) {
        throw new ListenError(
          `usetls is on but the certificate or key cannot be read (${(e as Error).message}); set tlscert/tlskey or ` +
            `run "voxswitch gencert --data-dir ${this.s.config.dataDir}"`,
        );
      }
      this.tls = createTlsServer({ cert, key }, (sock) => this.onSocket(sock as unknown as Socket, true));
      this.tls.on('tlsClientError', () => undefined);
      const tport = await new Promise<number>((res, rej) => {
        this.tls!.once('error', (e) => rej(listenHint(e as NodeJS.ErrnoException, 'TLS API', o.tlsport)));
        this.tls!.listen(o.tlsport, host, () => res((this.tls!.address() as AddressInfo).port));
      });
      out.push({ kind: 'tls (https, wss, lines)', address: host, port: tport });
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    this.http.close(() => undefined); // stops the request-timeout checker
    await Promise.all([
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tls ? this.tls.close(() => r()) : r())),
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
    ]);
  }
}
