/** Shared bits of the HTTP benchmarks: a free TCP port on 127.0.0.1 and waiting for a URL to answer. */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export function waitFor(url: string, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((res, rej) => {
    const tick = () =>
      fetch(url)
        .then(() => res())
        .catch(() => (Date.now() > end ? rej(new Error(`server at ${url} did not start`)) : setTimeout(tick, 100)));
    tick();
  });
}
