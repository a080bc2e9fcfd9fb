/**
 * UDP port allocation for the RTP relay: pairs of an even port (RTP) and the odd port above it (RTCP) from
 * [min, max], handed out round robin so a port just released is not reused at once (late packets of the old call).
 * A pair of which another program holds either port (EADDRINUSE on bind) is skipped. Every socket is bound here and
 * closed by `release`.
 */
import { createSocket, type Socket } from 'node:dgram';

export class PortsExhaustedError extends Error {
  constructor(min: number, max: number) {
    super(`no free RTP port in ${min}-${max}`);
  }
}

/** An RTP socket on an even port and the RTCP socket on the port above it. */
export interface BoundPair {
  socket: Socket;
  port: number;
  rtcp: Socket;
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    /* already closed */
  }
}

export class PortPool {
  private readonly used = new Set<number>();
  private next: number;
  readonly min: number;
  readonly max: number;
  private readonly last: number;

  constructor(
    min: number,
    max: number,
    private readonly bindAddr = '0.0.0.0',
  ) {
    this.min = min % 2 ? min + 1 : min;
    this.max = max;
    // the highest even port whose RTCP port (+1) is still in the range
    this.last = max % 2 ? max - 1 : max - 2;
    if (this.min > this.last) throw new Error(`RTP port range ${min}-${max} holds no even port with its RTCP port`);
    this.next = this.min;
  }

  /** Number of RTP/RTCP port pairs in the range. */
  get capacity(): number {
    return (this.last - this.min) / 2 + 1;
  }

  get inUse(): number {
    return this.used.size;
  }

  /** Binds RTP (the next free even port) and RTCP (the port above it); rejects with PortsExhaustedError. */
  async bind(): Promise<BoundPair> {
    for (let tries = 0; tries < this.capacity; tries++) {
      const port = this.take();
      if (port === undefined) break;
      const socket = await this.open(port);
      const rtcp = socket && (await this.open(port + 1));
      if (socket && rtcp) return { socket, port, rtcp };
      // held by someone else: skip the pair (it stays marked until the pool wraps around to it again)
      if (socket) closeQuietly(socket);
      this.used.delete(port);
    }
    throw new PortsExhaustedError(this.min, this.max);
  }

  private async open(port: number): Promise<Socket | null> {
    const socket = createSocket({ type: this.bindAddr.includes(':') ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port, address: this.bindAddr, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      return socket;
    } catch {
      closeQuietly(socket);
      return null;
    }
  }

  /**
   * Reserves a free pair for a socket owner outside this thread (the conference mixer worker binds it itself):
   * the pair is checked by binding both ports, the sockets are closed again and the ports stay taken until
   * `unreserve`. Rejects with PortsExhaustedError.
   */
  async reserve(): Promise<number> {
    const pair = await this.bind();
    closeQuietly(pair.socket);
    closeQuietly(pair.rtcp);
    return pair.port;
  }

  /** Returns a reserved pair's ports to the pool. */
  unreserve(port: number): void {
    this.used.delete(port);
  }

  /** Closes both sockets of a pair and returns its ports to the pool. */
  release(pair: BoundPair): void {
    closeQuietly(pair.socket);
    closeQuietly(pair.rtcp);
    this.used.delete(pair.port);
  }

  private take(): number | undefined {
    for (let i = 0; i < this.capacity; i++) {
      const p = this.next;
      this.next += 2;
      if (this.next > this.last) this.next = this.min;
      if (!this.used.has(p)) {
        this.used.add(p);
        return p;
      }
    }
    return undefined;
  }
}
