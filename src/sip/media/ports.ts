/**
 * UDP port allocation for the RTP relay: even ports (RTP; port+1 stays free for RTCP) from [min, max], handed out
 * round robin so a port just released is not reused at once (late packets of the old call). A port another program
 * holds (EADDRINUSE on bind) is skipped. Every socket is bound here and closed by `release`.
 */
import { createSocket, type Socket } from 'node:dgram';

export class PortsExhaustedError extends Error {
  constructor(min: number, max: number) {
    super(`no free RTP port in ${min}-${max}`);
  }
}

export class PortPool {
  private readonly used = new Set<number>();
  private next: number;
  readonly min: number;
  readonly max: number;

  constructor(
    min: number,
    max: number,
    private readonly bindAddr = '0.0.0.0',
  ) {
    this.min = min % 2 ? min + 1 : min;
    this.max = max;
    if (this.min > this.max) throw new Error(`RTP port range ${min}-${max} holds no even port`);
    this.next = this.min;
  }

  /** Number of even ports in the range. */
  get capacity(): number {
    return Math.floor((this.max - this.min) / 2) + 1;
  }

  get inUse(): number {
    return this.used.size;
  }

  /** Binds a UDP socket on the next free even port of the range; rejects with PortsExhaustedError. */
  async bind(): Promise<{ socket: Socket; port: number }> {
    const family = this.bindAddr.includes(':') ? 'udp6' : 'udp4';
    for (let tries = 0; tries < this.capacity; tries++) {
      const port = this.take();
      if (port === undefined) break;
      const socket = createSocket({ type: family });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ port, address: this.bindAddr, exclusive: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return { socket, port };
      } catch {
        // held by someone else: skip it (it stays marked until the pool wraps around to it again)
        this.used.delete(port);
        try {
          socket.close();
        } catch {
          /* not open */
        }
      }
    }
    throw new PortsExhaustedError(this.min, this.max);
  }

  /** Closes the socket and returns its port to the pool. */
  release(socket: Socket, port: number): void {
    try {
      socket.close();
    } catch {
      /* already closed */
    }
    this.used.delete(port);
  }

  private take(): number | undefined {
    for (let i = 0; i < this.capacity; i++) {
      const p = this.next;
      this.next += 2;
      if (this.next > this.max) this.next = this.min;
      if (!this.used.has(p)) {
        this.used.add(p);
        return p;
      }
    }
    return undefined;
  }
}
