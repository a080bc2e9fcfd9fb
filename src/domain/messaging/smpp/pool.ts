/** The SMPP transport: one SmppSession per enabled SMS gateway, kept in step with tb_smsgateways (SmsTransport). */
import type { SecretBox } from '../../accounts/secrets.js';
import type { SmsGateway } from '../sms/gateways.js';
import type { GatewayStatus, InboundSms, OutPart, SmsTransport, SubmitOutcome } from '../sms/transport.js';
import { SmppSession, type SessionConfig, type SessionEvents } from './session.js';

export interface PoolOptions {
  enquireLinkMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  responseTimeoutMs: number;
  log: SessionEvents['log'];
}

export class SmppPool implements SmsTransport {
  private sessions = new Map<string, { s: SmppSession; key: string }>();
  private inbound: (m: InboundSms) => Promise<void> = async () => undefined;
  private boundHandlers: Array<(gateway: string) => void> = [];

  constructor(
    private readonly box: SecretBox,
    private readonly o: PoolOptions,
  ) {}

  private config(g: SmsGateway): SessionConfig {
    return {
      name: g.name,
      host: g.host,
      port: g.port,
      tls: g.tls,
      systemId: g.systemId,
      password: g.passwordEnc ? this.box.decrypt(g.passwordEnc) : '',
      systemType: g.systemType,
      bindMode: g.bindMode,
      window: g.window,
      throughput: g.throughput,
      enquireLinkMs: this.o.enquireLinkMs,
      backoffMinMs: this.o.backoffMinMs,
      backoffMaxMs: this.o.backoffMaxMs,
      responseTimeoutMs: this.o.responseTimeoutMs,
    };
  }

  sync(gateways: readonly SmsGateway[]): void {
    const want = new Map<string, SessionConfig>();
    for (const g of gateways) if (g.enabled) want.set(g.name, this.config(g));
    for (const [name, cur] of this.sessions) {
      const c = want.get(name);
      if (!c || SmppSession.key(c) !== cur.key) {
        void cur.s.stop();
        this.sessions.delete(name);
      }
    }
    const events: SessionEvents = {
      inbound: (m) => this.inbound(m),
      bound: (name) => this.boundHandlers.forEach((h) => h(name)),
      log: this.o.log,
    };
    for (const [name, c] of want) {
      if (this.sessions.has(name)) continue;
      const s = new SmppSession(c, events);
      this.sessions.set(name, { s, key: SmppSession.key(c) });
      s.start();
    }
  }

  status(gateway: string): GatewayStatus | undefined {
    return this.sessions.get(gateway)?.s.status();
  }

  capacity(gateway: string): number {
    return this.sessions.get(gateway)?.s.capacity() ?? 0;
  }

  submit(gateway: string, part: OutPart, beforeWrite: () => Promise<void> = async () => undefined) {
    const s = this.sessions.get(gateway)?.s;
    if (!s) return Promise.resolve<SubmitOutcome>({ kind: 'unavailable', text: `gateway ${gateway} has no session` });
    return s.submit(part, beforeWrite);
  }

  onInbound(handler: (m: InboundSms) => Promise<void>): void {
    this.inbound = handler;
  }

  onBound(handler: (gateway: string) => void): void {
    this.boundHandlers.push(handler);
  }

  async stop(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((x) => x.s.stop()));
  }
}
