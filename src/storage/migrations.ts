/**
 * Schema migrations, in order. Each runs once (kysely's migrator records them); the same code builds the
 * schema on SQLite and on PostgreSQL. Never edit a released migration: add a new one.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './dialect.js';
import { installInvariants } from './invariants.js';
import { installReservations } from './reservations.js';
import { installMailWebhooks } from './mailtables.js';

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
      },
    },
    '0002_billing_rating_numbers': {
      async up(db: Kysely<any>) {
        for (const [name, type] of [
          ['tariffid', 'integer'],
          ['forgot_question', 'varchar(256)'],
          ['forgot_answer_enc', 'text'],
        ] as const) {
          await db.schema.alterTable('tb_users').addColumn(name, type).execute();
        }
        await db.schema
          .createTable('tb_tariffplans')
          .addColumn('id', idType, id)
          .addColumn('name', 'varchar(128)', (c) => c.notNull().unique())
          .addColumn('currency', 'varchar(8)', (c) => c.notNull().defaultTo('USD'))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_tariffs')
          .addColumn('id', idType, id)
          .addColumn('planid', 'integer', (c) => c.notNull())
          .addColumn('prefix', 'varchar(32)', (c) => c.notNull())
          .addColumn('destination', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('price', 'bigint', (c) => c.notNull())
          .addColumn('connectfee', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('minduration', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('increment', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('currency', 'varchar(8)', (c) => c.notNull().defaultTo('USD'))
          .addColumn('valid_from', 'bigint')
          .addColumn('valid_to', 'bigint')
          .execute();
        await db.schema.createIndex('ix_tariffs_plan_prefix').on('tb_tariffs').columns(['planid', 'prefix']).execute();
        await db.schema
          .createTable('tb_pinbatches')
          .addColumn('id', idType, id)
          .addColumn('name', 'varchar(128)', (c) => c.notNull())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('value', 'bigint', (c) => c.notNull())
          .addColumn('currency', 'varchar(8)', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('created_by', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_pins')
          .addColumn('id', idType, id)
          .addColumn('pin_hash', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('batchid', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('value', 'bigint', (c) => c.notNull())
          .addColumn('currency', 'varchar(8)', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('used_at', 'bigint')
          .addColumn('used_by', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_numbers')
          .addColumn('id', idType, id)
          .addColumn('number', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('userid', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('status', 'varchar(16)', (c) => c.notNull().defaultTo('free'))
          .addColumn('locked_until', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_cli')
          .addColumn('id', idType, id)
          .addColumn('userid', 'integer', (c) => c.notNull())
          .addColumn('number', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_callbacknumbers')
          .addColumn('id', idType, id)
          .addColumn('userid', 'integer', (c) => c.notNull())
          .addColumn('number', 'varchar(64)', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('ix_cbnum_user_number')
          .on('tb_callbacknumbers')
          .columns(['userid', 'number'])
          .unique()
          .execute();
        await db.schema
          .createTable('tb_callforward')
          .addColumn('userid', 'integer', (c) => c.primaryKey())
          .addColumn('always', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('busy', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('noanswer', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_confrooms')
          .addColumn('id', idType, id)
          .addColumn('userid', 'integer', (c) => c.notNull().unique())
          .addColumn('room', 'varchar(32)', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_cdrs')
          .addColumn('id', idType, id)
          .addColumn('callid', 'varchar(256)', (c) => c.notNull())
          .addColumn('caller', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('callee', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('userid', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('route', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('start_at', 'bigint', (c) => c.notNull())
          .addColumn('connect_at', 'bigint')
          .addColumn('end_at', 'bigint', (c) => c.notNull())
          .addColumn('duration', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('billed', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('cost', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('currency', 'varchar(8)', (c) => c.notNull().defaultTo('USD'))
          .addColumn('reason', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('leg', 'varchar(16)', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ix_cdrs_callid_leg').on('tb_cdrs').columns(['callid', 'leg']).unique().execute();
        await db.schema.createIndex('ix_cdrs_user').on('tb_cdrs').columns(['userid', 'start_at']).execute();
      },
    },
    '0003_sip': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('tb_imessages')
          .addColumn('id', idType, id)
          .addColumn('fromuser', 'varchar(128)', (c) => c.notNull())
          .addColumn('touser', 'varchar(128)', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('content_type', 'varchar(128)', (c) => c.notNull().defaultTo('text/plain'))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('delivered_at', 'bigint')
          .execute();
        await db.schema.createIndex('ix_imessages_to').on('tb_imessages').columns(['touser', 'delivered_at']).execute();
        await db.schema
          .createTable('tb_presence')
          .addColumn('userid', 'integer', (c) => c.primaryKey())
          .addColumn('status', 'varchar(512)', (c) => c.notNull().defaultTo(''))
          .addColumn('pidf', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0004_number_indexes': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('ix_numbers_user_status').on('tb_numbers').columns(['userid', 'status']).execute();
        await db.schema.createIndex('ix_numbers_status_id').on('tb_numbers').columns(['status', 'id']).execute();
        await db.schema.createIndex('ix_cli_user').on('tb_cli').column('userid').execute();
      },
    },
    '0005_user_lookup_indexes': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('ix_users_phone').on('tb_users').column('phone').execute();
        await db.schema
          .createIndex('ix_users_email_lower')
          .on('tb_users')
          .expression(sql`lower(email)`)
          .execute();
      },
    },
    '0006_calls': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('tb_gateways')
          .addColumn('id', idType, id)
          .addColumn('name', 'varchar(128)', (c) => c.notNull().unique())
          .addColumn('host', 'varchar(256)', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull().defaultTo(5060))
          .addColumn('transport', 'varchar(8)', (c) => c.notNull().defaultTo('udp'))
          .addColumn('username', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('password_enc', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('prefix', 'varchar(32)', (c) => c.notNull().defaultTo(''))
          .addColumn('strip', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('addprefix', 'varchar(32)', (c) => c.notNull().defaultTo(''))
          .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(10))
          .addColumn('weight', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('inbound_ip', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_livecalls')
          .addColumn('callid', 'varchar(256)', (c) => c.primaryKey())
          .addColumn('userid', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('caller', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('callee', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('route', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('leg', 'varchar(16)', (c) => c.notNull().defaultTo(''))
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('start_at', 'bigint', (c) => c.notNull())
          .addColumn('connect_at', 'bigint')
          .addColumn('maxduration', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('reserved', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('rate_json', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0007_money_invariants': {
      async up(db: Kysely<any>) {
        await installInvariants(db, dialect);
      },
    },
    '0008_credit_reservations': {
      async up(db: Kysely<any>) {
        await installReservations(db, dialect);
      },
    },
    '0009_sms': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('tb_smsgateways')
          .addColumn('id', idType, id)
          .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('host', 'varchar(256)', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull().defaultTo(2775))
          .addColumn('system_id', 'varchar(16)', (c) => c.notNull())
          .addColumn('password_enc', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('system_type', 'varchar(13)', (c) => c.notNull().defaultTo(''))
          .addColumn('bindmode', 'varchar(16)', (c) => c.notNull().defaultTo('transceiver'))
          .addColumn('prefixes', 'varchar(512)', (c) => c.notNull().defaultTo(''))
          .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(10))
          .addColumn('default_sender', 'varchar(21)', (c) => c.notNull().defaultTo(''))
          .addColumn('allowed_senders', 'varchar(512)', (c) => c.notNull().defaultTo(''))
          .addColumn('throughput', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('window_size', 'integer', (c) => c.notNull().defaultTo(10))
          .addColumn('tls', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('maxparts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('tb_sms')
          .addColumn('id', idType, id)
          .addColumn('userid', 'integer', (c) => c.notNull())
          .addColumn('sender', 'varchar(21)', (c) => c.notNull().defaultTo(''))
          .addColumn('destination', 'varchar(32)', (c) => c.notNull())
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('encoding', 'varchar(8)', (c) => c.notNull())
          .addColumn('parts', 'integer', (c) => c.notNull())
          .addColumn('sent', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('acked', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('ref', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('gateway', 'varchar(64)', (c) => c.notNull().defaultTo(''))
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_try_at', 'bigint', (c) => c.notNull())
          .addColumn('owner', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('lease_until', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('error', 'varchar(512)', (c) => c.notNull().defaultTo(''))
          .addColumn('cost', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('refunded', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ix_sms_due').on('tb_sms').columns(['state', 'next_try_at']).execute();
        await db.schema.createIndex('ix_sms_user').on('tb_sms').columns(['userid', 'id']).execute();
        await db.schema
          .createTable('tb_smsparts')
          .addColumn('smsid', 'integer', (c) => c.notNull())
          .addColumn('part', 'integer', (c) => c.notNull())
          .addColumn('gateway', 'varchar(64)', (c) => c.notNull())
          .addColumn('message_id', 'varchar(65)', (c) => c.notNull())
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('pk_smsparts', ['smsid', 'part'])
          .execute();
        await db.schema.createIndex('ix_smsparts_msgid').on('tb_smsparts').columns(['gateway', 'message_id']).execute();
      },
    },
    '0010_mail_webhooks': {
      async up(db: Kysely<any>) {
        await installMailWebhooks(db, idType, id);
      },
    },
    '0011_operations': {
      async up(db: Kysely<any>) {
        // one row per maintenance job: the lease a process holds while it runs it (src/ops/maintenance/lock.ts)
        await db.schema
          .createTable('tb_jobs')
          .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('node', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .addColumn('started_at', 'bigint')
          .addColumn('lease_until', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createTable('tb_jobruns')
          .addColumn('id', idType, id)
          .addColumn('job', 'varchar(64)', (c) => c.notNull())
          .addColumn('node', 'varchar(128)', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('result', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('error', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('ix_jobruns_job').on('tb_jobruns').columns(['job', 'started_at']).execute();
        await db.schema.createIndex('ix_cdrs_end').on('tb_cdrs').column('end_at').execute();
      },
    },
    '0014_trunks': {
      async up(db: Kysely<any>) {
        // trunk registration (REGISTER with digest, refreshed) and how a host name is resolved (RFC 3263)
        const cols: Array<[string, 'integer' | 'varchar(128)' | 'varchar(8)', number | string]> = [
          ['register', 'integer', 0],
          ['register_expires', 'integer', 3600],
          ['register_user', 'varchar(128)', ''],
          ['auth_user', 'varchar(128)', ''],
          ['realm', 'varchar(128)', ''],
          ['register_contact', 'varchar(128)', ''],
          ['dns', 'varchar(8)', ''],
        ];
        for (const [name, type, def] of cols)
          await db.schema
            .alterTable('tb_gateways')
            .addColumn(name, type, (c) => c.notNull().defaultTo(def))
            .execute();
      },
    },
    '0019_confroom_pin': {
      async up(db: Kysely<any>) {
        // a conference room's PIN (getconfroom pin=…): asked by the IVR before a caller joins (NULL: none)
        await db.schema.alterTable('tb_confrooms').addColumn('pin', 'varchar(32)').execute();
      },
    },
    '0020_settings': {
      async up(db: Kysely<any>) {
        // the settings-in-database model of setini/loadinifiles/savesettings (src/ops/settings): one row per option,
        // saved = 0 while the value differs from what the config file was last given
        await db.schema
          .createTable('tb_settings')
          .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('module', 'varchar(32)', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('saved', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('updated_at', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('updated_by', 'varchar(128)', (c) => c.notNull().defaultTo(''))
          .execute();
      },
    },
    '0021_user_allowtransfer': {
      async up(db: Kysely<any>) {
        // may the account's phones transfer calls by REFER (setfield tb_users allowtransfer 0/1; option allowtransfer
        // switches transfers off for every account)
        await db.schema
          .alterTable('tb_users')
          .addColumn('allowtransfer', 'integer', (c) => c.notNull().defaultTo(1))
          .execute();
      },
    },
    '0022_sms_mo': {
      async up(db: Kysely<any>) {
        // one row per mobile-originated SMS to a user: its charge (ledger ref smsmo:<id>) and what became of it;
        // `dedupe` (a hash of gateway, sender, number, concatenation reference and text) finds a redelivery
        await db.schema
          .createTable('tb_smsmo')
          .addColumn('id', idType, id)
          .addColumn('gateway', 'varchar(64)', (c) => c.notNull())
          .addColumn('dedupe', 'varchar(64)', (c) => c.notNull())
          .addColumn('userid', 'integer', (c) => c.notNull())
          .addColumn('sender', 'varchar(32)', (c) => c.notNull())
          .addColumn('destination', 'varchar(32)', (c) => c.notNull())
          .addColumn('parts', 'integer', (c) => c.notNull())
          .addColumn('cost', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('note', 'varchar(256)', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ix_smsmo_dedupe').on('tb_smsmo').columns(['dedupe', 'created_at']).execute();
      },
    },
  };
}
