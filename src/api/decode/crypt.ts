/**
 * The document's simple request encryption: XOR with the httpapiencryptkey bytes, then Base64 with '=' → '-'.
 * Used for a whole request (`mcrfs=`) or per value (`oenc1_` prefix).
 */
export function xorBytes(data: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[i % key.length]!;
  return out;
}

export function encryptValue(plain: string, key: string): string {
  return xorBytes(Buffer.from(plain, 'utf8'), Buffer.from(key, 'utf8')).toString('base64').replace(/=/g, '-');
}

/** Undefined when the value is not valid Base64 or there is no key. */
export function decryptValue(enc: string, key: string): string | undefined {
  if (!key) return undefined;
  // '+' may have become ' ' through form decoding; URL-safe alphabets are accepted too.
  const b64 = enc.trim().replace(/ /g, '+').replace(/-/g, '=').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return undefined;
  return xorBytes(Buffer.from(b64, 'base64'), Buffer.from(key, 'utf8')).toString('utf8');
}
