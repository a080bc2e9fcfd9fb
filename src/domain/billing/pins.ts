/**
 * Recharge PINs: random digits from the OS CSPRNG, stored only as SHA-256 hex (tb_pins.pin_hash); the clear
 * PINs are returned once, when the batch is made. A batch is one tb_pinbatches row; its PINs are inserted in
 * chunks, each chunk in a transaction; a batch that fails part-way is removed again (no half batches).
 */
import { createHash, randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { DomainError } from '../errors.js';

export const PIN_DIGITS = 14;
export const MAX_BATCH = 1_000_000;
const CHUNK = 500;

/** A PIN batch request that is out of bounds (count, value, currency). */
export class PinInputError extends DomainError {}

export function hashPin(pin: string): string {
  return createHash('sha256').update(pin, 'utf8').digest('hex');
}

/** The PIN as typed, without spaces and dashes; undefined when it cannot be a PIN (4-32 digits). */
export function normalizePin(s: string | undefined): string | undefined {
  const t = (s ?? '').replace(/[\s-]/g, '');
  return /^\d{4,32}$/.test(t) ? t : undefined;
}

/** A random PIN of `digits` digits (the first one not 0, so spreadsheets keep it intact). */
export function randomPin(digits = PIN_DIGITS): string {
  let s = String(randomInt(1, 10));
  for (let i = 1; i < digits; i++) s += String(randomInt(0, 10));
  return s;
}

export interface GeneratePinsOptions {
  count: number;
  /** micro-units, > 0 */
  value: number;
  currency: string;
  /** epoch ms; null/undefined: never expires */
  expiresAt?: number | null;
  name: string;
  createdBy: number;
  digits?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function generatePins(
  db: Kysely<Database>,
  o: GeneratePinsOptions,
): Promise<{ batchId: number; pins: string[] }> {
  const digits = o.digits ?? PIN_DIGITS;
  const currency = (o.currency ?? '').trim().toUpperCase();
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > MAX_BATCH)
    throw new PinInputError(`count: expected a whole number from 1 to ${MAX_BATCH}`);
  if (!Number.isSafeInteger(o.value) || o.value <= 0) throw new PinInputError('value: expected an amount above zero');
  if (!/^[A-Z]{3}$/.test(currency)) throw new PinInputError('currency: expected a 3-letter ISO code such as USD');
  if (o.expiresAt != null && (!Number.isSafeInteger(o.expiresAt) || o.expiresAt <= Date.now()))
    throw new PinInputError('expiry: must be in the future');
  const name = (o.name ?? '').trim();
  if (name.length > 128 || /[\x00-\x1f]/.test(name)) throw new PinInputError('name: at most 128 printable characters');
  if (!Number.isInteger(digits) || digits < 10 || digits > 32) throw new PinInputError('digits: expected 10 to 32');

  const now = Date.now();
  const batch = await db
    .insertInto('tb_pinbatches')
    .values({
      name,
      count: o.count,
      value: o.value,
      currency,
      expires_at: o.expiresAt ?? null,
      created_by: o.createdBy,
      created_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const batchId = Number(batch.id);
  const pins: string[] = [];
  const seen = new Set<string>();
  try {
    while (pins.length < o.count) {
      const n = Math.min(CHUNK, o.count - pins.length);
      const chunk: string[] = [];
      while (chunk.length < n) {
        const p = randomPin(digits);
        if (!seen.has(p)) {
          seen.add(p);
          chunk.push(p);
        }
      }
      await db.transaction().execute(async (trx) => {
        const hashes = chunk.map(hashPin);
        // PINs of earlier batches are never reused: replace any that already exist (astronomically rare)
        const taken = new Set(
          (await trx.selectFrom('tb_pins').select('pin_hash').where('pin_hash', 'in', hashes).execute()).map(
            (r) => r.pin_hash,
          ),
        );
        for (let i = 0; i < chunk.length; i++) {
          while (taken.has(hashes[i]!)) {
            let p: string;
            do p = randomPin(digits);
            while (seen.has(p));
            seen.add(p);
            chunk[i] = p;
            hashes[i] = hashPin(p);
          }
        }
        await trx
          .insertInto('tb_pins')
          .values(
            hashes.map((h) => ({
              pin_hash: h,
              batchid: batchId,
              value: o.value,
              currency,
              expires_at: o.expiresAt ?? null,
              used_at: null,
              used_by: null,
              created_at: now,
            })),
          )
          .execute();
      });
      pins.push(...chunk);
      o.onProgress?.(pins.length, o.count);
    }
  } catch (e) {
    await db
      .deleteFrom('tb_pins')
      .where('batchid', '=', batchId)
      .execute()
      .catch(() => undefined);
    await db
      .deleteFrom('tb_pinbatches')
      .where('id', '=', batchId)
      .execute()
      .catch(() => undefined);
    throw e;
  }
  return { batchId, pins };
}
