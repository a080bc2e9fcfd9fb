/**
 * Passwords at rest are encrypted (AES-256-GCM) with the server key, a random 32-byte file in the data dir:
 * the salted-MD5 API check and SIP digest need the clear password, so they cannot be one-way hashes.
 */
import { randomBytes, createCipheriv, createDecipheriv, timingSafeEqual, createHash, hkdfSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromDataDir(dataDir: string): SecretBox {
    const file = join(dataDir, 'server.key');
    if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (key.length !== 32) throw new Error(`${file}: expected 64 hex characters (a 32-byte key)`);
    return new SecretBox(key);
  }

  /**
   * A 32-byte key for another purpose (HKDF-SHA256 of the server key and a label): the same on every process and
   * node that shares the data dir's key, which the nodes of one switch must (they decrypt the same passwords).
   */
  derive(label: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), label, 32));
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1:${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${body.toString('base64')}`;
  }

  decrypt(enc: string): string {
    const [v, iv, tag, body] = enc.split(':');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unreadable encrypted value');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
  }
}

/** Constant-time string equality (compares fixed-length digests so lengths leak nothing). */
export function safeEqual(a: string, b: string): boolean {
  if (a.length === b.length && a.length <= 64) {
    // equal lengths: compare the bytes directly (constant time for the length)
    const ba = Buffer.from(a, 'utf8');
    const bb = Buffer.from(b, 'utf8');
    if (ba.length === bb.length) return timingSafeEqual(ba, bb);
  }
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

export function md5hex(s: string): string {
  return createHash('md5').update(s, 'utf8').digest('hex');
}

export function randomToken(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}
