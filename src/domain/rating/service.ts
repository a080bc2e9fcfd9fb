/** Tariff plans and rating: longest-prefix match, number normalisation, cost and maxduration. */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';

export class RatingService {
  constructor(readonly db: Kysely<Database>, readonly config: ConfigStore) {}

  /** Loads the tariff plans into memory (at start and after imports). */
  async load(): Promise<void> {}
}
