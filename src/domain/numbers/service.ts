/** Numbers and features: the DID pool, caller numbers (ANI), callback numbers, forwarding rules, conference rooms. */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';

export class NumberService {
  constructor(readonly db: Kysely<Database>, readonly config: ConfigStore) {}
}
