/** Call detail records: rated and charged through one code path (gencdr now, real calls later). */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Ledger } from './ledger.js';
import type { RatingService } from '../rating/service.js';

export class CdrService {
  constructor(readonly db: Kysely<Database>, readonly ledger: Ledger, readonly rating: RatingService) {}
}
