/**
 * The queueing signal of the overload control: how many bytes wait in the kernel receive buffer of our UDP socket.
 * A saturated event loop stays punctual (libuv reads a few dozen datagrams per turn) while this buffer grows, and the
 * buffer only grows when this process does not keep up: another process taking the CPU raises the loop's busy share,
 * not our backlog.
 *
 * On Linux `/proc/net/udp` and `/proc/net/udp6` list every UDP socket with its local port and `rx_queue` (hex,
 * bytes, counted as the kernel's buffer memory: a ~1 KB SIP datagram takes about 2 KB). Other systems: no reading.
 *
 * `QueueState` turns the readings into a decision with hysteresis: behind after `confirm` readings in a row at or
 * past `high` (the queue did not drain while this process ran: a stall, the process descheduled or a GC pause, leaves
 * one full reading that the next turns of the loop drain), caught up again once a reading is at or below `low`; a
 * queue filling again soon after (`rearmMs`) is the same overload, and one reading past `rearm` (half of `high`)
 * turns the control back on: the bursts admitted between two refusing spells stay short.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Bytes waiting in the receive buffers watched; undefined when nothing can be read. */
export interface QueueSource {
  sample(): number | undefined;
}

const PROC_FILES = ['/proc/net/udp', '/proc/net/udp6'];

/** The largest rx_queue (bytes) among the sockets bound to one of `ports`, in the text of /proc/net/udp{,6}. */
export function rxQueue(text: string, ports: ReadonlySet<number>): number | undefined {
  let found: number | undefined;
  let at = text.indexOf('\n') + 1; // the header line
  while (at > 0 && at < text.length) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? text.length : end);
    at = end < 0 ? -1 : end + 1;
    // "  sl  local_address rem_address   st tx_queue:rx_queue ..."; local_address is HEXIP:HEXPORT
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const port = parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16);
    if (!ports.has(port)) continue;
    const rx = parseInt(f[4].slice(f[4].indexOf(':') + 1), 16);
    if (Number.isFinite(rx)) found = Math.max(found ?? 0, rx);
  }
  return found;
}

/** Reads a /proc file through a descriptor kept open (a read from offset 0 renders it anew: no open/close). */
export function procReader(): { read: (path: string) => string; close: () => void } {
  const fds = new Map<string, number>();
  const buf = Buffer.alloc(64 * 1024);
  return {
    read(path) {
      let fd = fds.get(path);
      if (fd === undefined) fds.set(path, (fd = openSync(path, 'r')));
      let text = '';
      for (let pos = 0; ;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n <= 0) return text;
        text += buf.toString('latin1', 0, n);
        pos += n;
      }
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}

/**
 * Reads the receive queue of the UDP sockets on the ports watched (about 35 µs a reading on the development host:
 * one read of a kept descriptor). Several sockets on one port (workers with SO_REUSEPORT) count as the fullest of
 * them. The file that held the port last time is read first, the other only when it holds none.
 */
export class UdpReceiveQueue implements QueueSource {
  readonly ports = new Set<number>();
  private readable = true;
  private files = [...PROC_FILES];
  private readonly proc = procReader();

  constructor(private readonly read: (path: string) => string = (p) => this.proc.read(p)) {}

  watch(port: number): void {
    if (port > 0) this.ports.add(port);
  }

  sample(): number | undefined {
    if (!this.readable || this.ports.size === 0) return undefined;
    let readAny = false;
    for (const f of this.files) {
      let text: string;
      try {
        text = this.read(f);
      } catch {
        continue; // no IPv6, or not Linux
      }
      readAny = true;
      const v = rxQueue(text, this.ports);
      if (v === undefined) continue;
      if (f !== this.files[0]) this.files = [f, ...this.files.filter((x) => x !== f)];
      return v;
    }
    if (!readAny) this.readable = false;
    return undefined;
  }

  close(): void {
    this.proc.close();
  }
}

export interface QueueStateOptions {
  /** Bytes in the receive queue from which new requests are refused; 0 disables. */
  high: number;
  /** Bytes at or below which refusing stops. */
  low: number;
  /** Readings in a row at or past `high` that turn the control on (a lone one is a stall: GC, descheduled). */
  confirm?: number;
  /** Within this long (ms) after refusing stopped, one reading at or past `rearm` turns it on again. */
  rearmMs?: number;
  /** Bytes of that reading. Default half of `high`. */
  rearm?: number;
  now?: () => number;
}

export class QueueState {
  high: number;
  low: number;
  readonly confirm: number;
  readonly rearmMs: number;
  rearm: number;
  behind = false;
  /** The last reading (bytes) and the highest since stats last asked. */
  last = 0;
  peak = 0;
  /** Times the control turned on. */
  episodes = 0;
  private over = 0;
  private caughtUpAt = -Infinity;
  private readonly now: () => number;

  constructor(o: QueueStateOptions) {
    this.high = o.high;
    this.low = o.low;
    this.confirm = o.confirm ?? 3;
    this.rearmMs = o.rearmMs ?? 1000;
    this.rearm = o.rearm ?? o.high / 2;
    this.now = o.now ?? Date.now;
  }

  /** One reading (bytes; undefined: none, the state stays). */
  reading(bytes: number | undefined): void {
    if (bytes === undefined) return;
    this.last = bytes;
    this.peak = Math.max(this.peak, bytes);
    if (this.high <= 0) {
      this.behind = false;
      this.over = 0;
      return;
    }
    this.over = bytes >= this.high ? this.over + 1 : 0;
    if (this.behind) {
      if (bytes <= this.low) {
        this.behind = false;
        this.caughtUpAt = this.now();
      }
    } else if (this.over >= this.confirm || (bytes >= this.rearm && this.now() - this.caughtUpAt < this.rearmMs)) {
      this.behind = true;
      this.episodes++;
    }
  }
}
