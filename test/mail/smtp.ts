/**
 * A real SMTP server on loopback for the mail and fax tests (smtp-server), keeping what arrives parsed with
 * mailparser, and letting a test answer a recipient with a temporary (4xx) or permanent (5xx) refusal.
 */
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';

export interface Received {
  mail: ParsedMail;
  raw: Buffer;
  secure: boolean;
  user?: string;
  rcpt: string[];
}

export interface TestSmtp {
  port: number;
  received: Received[];
  /** Answers for recipients: a code (451, 550) with its count of uses (Infinity: always). */
  refuse: Map<string, { code: number; times: number }>;
  close(): Promise<void>;
  listen(port: number): Promise<void>;
}

export async function startSmtp(
  opts: { tls?: { cert: string; key: string }; auth?: { user: string; pass: string } } = {},
): Promise<TestSmtp> {
  const received: Received[] = [];
  const refuse = new Map<string, { code: number; times: number }>();
  const make = () => {
    const o: SMTPServerOptions = {
      secure: false,
      disabledCommands: [...(opts.tls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])],
      authOptional: !opts.auth,
      logger: false,
      onAuth(a, _s, cb) {
        if (opts.auth && a.username === opts.auth.user && a.password === opts.auth.pass)
          return cb(null, { user: a.username });
        return cb(Object.assign(new Error('bad credentials'), { responseCode: 535 }));
      },
      onRcptTo(addr, _s, cb) {
        const r = refuse.get(addr.address);
        if (r && r.times > 0) {
          r.times--;
          const text = r.code >= 500 ? 'mailbox unavailable' : 'try again later';
          return cb(Object.assign(new Error(text), { responseCode: r.code }));
        }
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw).then(
            (mail) => {
              received.push({
                mail,
                raw,
                secure: session.secure,
                user: session.user as string | undefined,
                rcpt: session.envelope.rcptTo.map((r) => r.address),
              });
              cb();
            },
            (e: Error) => cb(e),
          );
        });
      },
    };
    if (opts.tls) Object.assign(o, { key: opts.tls.key, cert: opts.tls.cert });
    return new SMTPServer(o);
  };
  let server = make();
  const t: TestSmtp = {
    port: 0,
    received,
    refuse,
    close: () => new Promise<void>((r) => server.close(() => r())),
    listen: (port: number) =>
      new Promise<void>((res, rej) => {
        server = make();
        server.on('error', rej);
        server.listen(port, '127.0.0.1', () => {
          t.port = (server.server.address() as AddressInfo).port;
          res();
        });
      }),
  };
  await t.listen(0);
  return t;
}
