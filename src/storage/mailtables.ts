/**
 * The tables of migration 0010: the e-mail queue (tb_mail), faxes (tb_fax), webhooks (tb_webhooks) and their
 * delivery attempts (tb_webhook_deliveries). Times are epoch ms; money is micro-units.
 */
import type { Kysely } from 'kysely';

export async function installMailWebhooks(db: Kysely<any>, idType: 'serial' | 'integer', id: (c: any) => any) {
  const text = (c: any) => c.notNull().defaultTo('');
  await db.schema
    .createTable('tb_mail')
    .addColumn('id', idType, id)
    .addColumn('userid', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('from_addr', 'varchar(320)', (c) => c.notNull())
    .addColumn('to_addr', 'varchar(320)', (c) => c.notNull())
    .addColumn('subject', 'varchar(998)', text)
    .addColumn('body', 'text', text)
    .addColumn('attachment', 'text')
    .addColumn('ref', 'varchar(64)', text)
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_try_at', 'bigint', (c) => c.notNull())
    .addColumn('error', 'varchar(1024)', text)
    .addColumn('message_id', 'varchar(256)', text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ix_mail_due').on('tb_mail').columns(['state', 'next_try_at']).execute();
  await db.schema
    .createTable('tb_fax')
    .addColumn('id', idType, id)
    .addColumn('userid', 'integer', (c) => c.notNull())
    .addColumn('from_num', 'varchar(64)', text)
    .addColumn('to_num', 'varchar(64)', (c) => c.notNull())
    .addColumn('filename', 'varchar(512)', (c) => c.notNull())
    .addColumn('pages', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cost', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('currency', 'varchar(8)', text)
    .addColumn('mode', 'varchar(8)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_try_at', 'bigint', (c) => c.notNull())
    .addColumn('error', 'varchar(1024)', text)
    .addColumn('mailid', 'integer')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ix_fax_due').on('tb_fax').columns(['state', 'next_try_at']).execute();
  await db.schema
    .createTable('tb_webhooks')
    .addColumn('id', idType, id)
    .addColumn('url', 'varchar(2048)', (c) => c.notNull())
    .addColumn('events', 'varchar(512)', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('tb_webhook_deliveries')
    .addColumn('id', idType, id)
    .addColumn('event_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('hookid', 'integer', (c) => c.notNull())
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('latency_ms', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'varchar(1024)', text)
    .addColumn('next_try_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ix_whdel_due').on('tb_webhook_deliveries').columns(['state', 'next_try_at']).execute();
  await db.schema.createIndex('ix_whdel_hook').on('tb_webhook_deliveries').columns(['hookid', 'id']).execute();
}
