/** tb_smsgateways: add, delete, list (passwords encrypted with the server key, never returned in clear). */
import type { Kysely } from 'kysely';
import type { Database, SmsGatewaysTable } from '../../../storage/schema.js';
import type { SecretBox } from '../../accounts/secrets.js';
import { SmsGatewayError, type BindMode, type NewSmsGateway, type SmsGateway } from './gateways.js';

type Raw = { [K in keyof SmsGatewaysTable]: any };

const split = (s: string) => (s ? s.split(',').filter(Boolean) : []);

function fromRow(r: Raw): SmsGateway {
  return {
    id: Number(r.id),
    name: r.name,
    host: r.host,
    port: Number(r.port),
    systemId: r.system_id,
    passwordEnc: r.password_enc,
    systemType: r.system_type,
    bindMode: r.bindmode as BindMode,
    prefixes: split(r.prefixes),
    priority: Number(r.priority),
    defaultSender: r.default_sender,
    allowedSenders: split(r.allowed_senders),
    throughput: Number(r.throughput),
    window: Number(r.window_size),
    tls: Number(r.tls) === 1,
    maxParts: Number(r.maxparts),
    enabled: Number(r.enabled) === 1,
  };
}

export class SmsGatewayStore {
  private cache: SmsGateway[] | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
  ) {}

  async list(): Promise<SmsGateway[]> {
    if (!this.cache) {
      const rows = await this.db.selectFrom('tb_smsgateways').selectAll().orderBy('id').execute();
      this.cache = rows.map((r) => fromRow(r as Raw));
    }
    return this.cache;
  }

  /** Forgets the cached list (after a change by another process: the next list() reads the table). */
  invalidate(): void {
    this.cache = undefined;
  }

  async add(g: NewSmsGateway): Promise<SmsGateway> {
    const dup = await this.db.selectFrom('tb_smsgateways').select('id').where('name', '=', g.name).executeTakeFirst();
    if (dup) throw new SmsGatewayError(`name: an SMS gateway named "${g.name}" exists (delsmsgateway it first)`);
    const r = await this.db
      .insertInto('tb_smsgateways')
      .values({
        name: g.name,
        host: g.host,
        port: g.port,
        system_id: g.systemId,
        password_enc: g.password ? this.box.encrypt(g.password) : '',
        system_type: g.systemType,
        bindmode: g.bindMode,
        prefixes: g.prefixes.join(','),
        priority: g.priority,
        default_sender: g.defaultSender,
        allowed_senders: g.allowedSenders.join(','),
        throughput: g.throughput,
        window_size: g.window,
        tls: g.tls ? 1 : 0,
        maxparts: g.maxParts,
        enabled: g.enabled ? 1 : 0,
        created_at: Date.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    this.invalidate();
    return fromRow(r as Raw);
  }

  async remove(nameOrId: string): Promise<SmsGateway> {
    const key = nameOrId.trim();
    if (!key) throw new SmsGatewayError('name: the SMS gateway name (or id) is missing', 421);
    const all = await this.list();
    const g =
      all.find((x) => x.name === key) ?? (/^\d+$/.test(key) ? all.find((x) => x.id === Number(key)) : undefined);
    if (!g) throw new SmsGatewayError(`no SMS gateway "${key.slice(0, 64)}"`, 404);
    await this.db.deleteFrom('tb_smsgateways').where('id', '=', g.id).execute();
    this.invalidate();
    return g;
  }
}
