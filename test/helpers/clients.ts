/** Real clients for end-to-end tests: curl, raw TCP lines, UDP datagrams, WebSocket. All bounded in time. */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { WebSocket } from 'ws';

export interface CurlResult {
  status: number;
  body: string;
  headers: string;
}

/** Runs curl (a real HTTP client); -w prints the status after the body. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '10', '-D', '-', '-w', '\n%{http_code}', ...args],
      { maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl failed: ${stderr || err.message}`));
        const lastNl = stdout.lastIndexOf('\n');
        const status = Number(stdout.slice(lastNl + 1));
        const rest = stdout.slice(0, lastNl);
        // headers of the last response end at the last blank line before the body
        const sep = rest.lastIndexOf('\r\n\r\n');
        resolve({ status, headers: rest.slice(0, sep), body: rest.slice(sep + 4) });
      },
    );
  });
}

/** A TCP line session: send lines, read answers (each ends with OK/ERROR line). */
export class LineClient {
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.waiters.splice(0).forEach((w) => w());
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  static open(port: number, host = '127.0.0.1'): Promise<LineClient> {
    return new Promise((res, rej) => {
      const s = connect(port, host, () => res(new LineClient(s)));
      s.once('error', rej);
    });
  }
  send(raw: string): void {
    this.sock.write(raw);
  }
  /** Reads until a line that is exactly OK or ERROR (or the connection closes). */
  async answer(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(.*?\r\n)?(OK|ERROR)\r\n/s.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (this.closed) {
        const b = this.buf;
        this.buf = '';
        return b;
      }
      if (Date.now() > deadline) throw new Error(`no answer; buffer: ${JSON.stringify(this.buf.slice(0, 200))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /** Reads one CR/LF-terminated line (answers in JSON/XML formats are one line). */
  async nextLine(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        return l;
      }
      if (this.closed || Date.now() > deadline) throw new Error('no line');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async ask(line: string): Promise<string> {
    this.send(line + '\r\n');
    return this.answer();
  }
  close(): void {
    this.sock.destroy();
  }
}

export function udpAsk(port: number, payload: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error('UDP answer timed out'));
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m.toString('utf8'));
    });
    s.send(payload, port, '127.0.0.1');
  });
}

export function wsOpen(url: string, opts: { origin?: string; rejectUnauthorized?: boolean } = {}): Promise<WebSocket> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, {
      origin: opts.origin,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      handshakeTimeout: 5000,
    });
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

export function wsAsk(ws: WebSocket, msg: string, timeoutMs = 5000): Promise<string> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('WS answer timed out')), timeoutMs);
    ws.once('message', (d) => {
      clearTimeout(t);
      res(d.toString());
    });
    ws.send(msg);
  });
}
