/**
 * Schema migrations, in order. Each runs once (kysely's migrator records them); the same code builds the
 * schema on SQLite and on PostgreSQL. Never edit a released migration: add a new one.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './db.js';

export function migrations(dialect: Dialect): Record<string, Migration> {
  const idType = dialect === 'pg' ? 'serial' : 'integer';
  const id = (c: any) => (dialect === 'pg' ? c.primaryKey() : c.primaryKey().autoIncrement());
  return {
    '0001_core': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('tb_users')
          .addColumn('id', idType, id)
          .addColumn('username', 'varchar(128)', (c) => c.notNull().unique())
          .addColumn('password_enc', 'text', (c) => c.notNull())
          .addColumn('type', 'integer', (c) => c.notNull())
          .addColumn('parentid', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('name', 'varchar(256)', (c) => c.notNull().defaultTo(''))
          .addColumn('email', 'varchar(256)', (c) => c.notNull().defaultTo(''))
          .addColumn('phone', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('currency', 'varchar(8)', (c) => c.notNull().defaultTo('USD'))
          .addColumn('country', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('address', 'varchar(512)', (c) => c.notNull().defaultTo(''))
          .addColumn('pin', 'varchar(64)', (c) => c.unique())
          .addColumn('did', 'varchar(64)', (c) => c.unique())
          .addColumn('credit', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ix_users_parent').on('tb_users').column('parentid').execute();

        await db.schema
          .createTable('tb_api')
          .addColumn('id', idType, id)
          .addColumn('fname', 'varchar(128)', (c) => c.notNull().unique())
          .addColumn('req_key', 'integer')
          .addColumn('req_ip', 'integer')
          .addColumn('req_user', 'integer')
          .addColumn('req_user_mode', 'integer')
          .addColumn('customsql', 'text')
          .execute();

        await db.schema
          .createTable('tb_ledger')
          .addColumn('id', idType, id)
          .addColumn('userid', 'integer', (c) => c.notNull())
          .addColumn('amount', 'bigint', (c) => c.notNull())
          .addColumn('balance_after', 'bigint', (c) => c.notNull())
          .addColumn('currency', 'varchar(8)', (c) => c.notNull())
          .addColumn('reason', 'varchar(64)', (c) => c.notNull())
          .addColumn('ref', 'varchar(256)', (c) => c.notNull().defaultTo(''))
          .addColumn('actor', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ix_ledger_user').on('tb_ledger').columns(['userid', 'id']).execute();

        await db.schema
          .createTable('tb_bans')
          .addColumn('ip', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('reason', 'varchar(256)', (c) => c.notNull())
          .addColumn('until', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        void sql;
      },
    },
  };
}
