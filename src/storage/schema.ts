/** Table types for the query builder. Money columns are integers in micro-units (1/1,000,000 of the currency). */
import type { Generated } from 'kysely';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_enc: string;
  type: number;
  parentid: number;
  name: string;
  email: string;
  phone: string;
  currency: string;
  country: string;
  address: string;
  pin: string | null;
  did: string | null;
  credit: number;
  enabled: number;
  created_at: number;
}

export interface ApiTable {
  id: Generated<number>;
  fname: string;
  req_key: number | null;
  req_ip: number | null;
  req_user: number | null;
  req_user_mode: number | null;
  customsql: string | null;
}

export interface LedgerTable {
  id: Generated<number>;
  userid: number;
  amount: number;
  balance_after: number;
  currency: string;
  reason: string;
  ref: string;
  actor: number;
  created_at: number;
}

export interface BansTable {
  ip: string;
  reason: string;
  until: number;
  created_at: number;
}

export interface Database {
  tb_users: UsersTable;
  tb_api: ApiTable;
  tb_ledger: LedgerTable;
  tb_bans: BansTable;
}
