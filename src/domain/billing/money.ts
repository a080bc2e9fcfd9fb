/** Money operations on the ledger: transfers between accounts, recharge PINs, card payments. */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ConfigStore } from '../../config/store.js';
import type { Ledger } from './ledger.js';
import type { UserService } from '../accounts/users.js';

export class MoneyService {
  constructor(readonly db: Kysely<Database>, readonly ledger: Ledger, readonly users: UserService, readonly config: ConfigStore) {}
}
