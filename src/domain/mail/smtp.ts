/**
 * The SMTP relay adapter (nodemailer): one transport per queue run, built from the smtp* options. A refusal is
 * classified: a 5xx answer is permanent, a 4xx answer or a connection that failed is temporary (retried).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type { Options } from '../../config/options.js';

export interface OutgoingMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  messageId: string;
  attachment?: { filename: string; contentType: string; content: Buffer };
}

/** What the queue needs of a mail transport (tests may give their own). */
export interface MailTransport {
  send(m: OutgoingMail): Promise<void>;
  close(): void;
}

export class SendFailure extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
  ) {
    super(message);
  }
}

/** A nodemailer error as a SendFailure: SMTP code 5xx permanent, 4xx or no answer temporary. */
export function classify(e: unknown): SendFailure {
  const err = e as { responseCode?: number; code?: string; response?: string; message?: string };
  const code = typeof err.responseCode === 'number' ? err.responseCode : 0;
  const text = (err.response || err.message || String(e)).replace(/[\r\n]+/g, ' ').slice(0, 500);
  if (code >= 500) return new SendFailure(`SMTP ${text}`, false);
  if (code >= 400) return new SendFailure(`SMTP ${text}`, true);
  if (err.code === 'EENVELOPE') return new SendFailure(text, false);
  return new SendFailure(`${err.code ? `${err.code}: ` : ''}${text}`, true);
}

export function smtpTransport(o: Options, dataDir: string): MailTransport {
  const ca = o.smtpcafile ? [readFileSync(resolve(dataDir, o.smtpcafile))] : undefined;
  const ms = o.smtptimeout * 1000;
  const t = nodemailer.createTransport({
    host: o.smtphost,
    port: o.smtpport,
    secure: o.smtpsecure === 'tls',
    requireTLS: o.smtpsecure === 'starttls',
    ignoreTLS: o.smtpsecure === 'none',
    auth: o.smtpuser ? { user: o.smtpuser, pass: o.smtppassword } : undefined,
    connectionTimeout: ms,
    greetingTimeout: ms,
    socketTimeout: ms,
    tls: ca ? { ca } : undefined,
    logger: false,
    debug: false,
  });
  return {
    async send(m) {
      try {
        await t.sendMail({
          from: m.from,
          to: m.to,
          subject: m.subject,
          text: m.text,
          messageId: m.messageId,
          attachments: m.attachment ? [m.attachment] : undefined,
        });
      } catch (e) {
        throw classify(e);
      }
    },
    close: () => t.close(),
  };
}
