/**
 * Ports for peers that need their number up front (sipp -p, a gateway row, a configured listener). Where the code
 * under test can bind port 0 and report the port, tests do that instead.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

// Below the kernel's ephemeral range (32768+ on Linux), so port-0 binds elsewhere never take a port handed out here;
// the start depends on the pid so two test processes walk different stretches.
const LOW = 20000;
const SPAN = 12000;
let next = LOW + ((process.pid * 97) % SPAN);

function udpFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createSocket('udp4');
    s.once('error', () => res(false));
    s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** A port free for both UDP and TCP on 127.0.0.1 right now (a peer started on it may still lose a race: retry). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    next = LOW + ((next - LOW + 7) % SPAN);
    if ((await udpFree(next)) && (await tcpFree(next))) return next;
  }
  throw new Error('no free port found');
}
