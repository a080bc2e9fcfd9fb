/**
 * A loopback SMSC for the tests, built with the `smpp` package's server side: binds checked against one account,
 * submit_sm recorded (with their UDH and decoded text), responses delayed or refused on demand, delivery receipts
 * (deliver_sm with esm_class 0x04, receipted_message_id and message_state TLVs and the appendix B text), drops.
 */
import smpp from 'smpp';
import type { Session, Pdu, Server } from 'smpp';
import type { AddressInfo } from 'node:net';

export interface Submitted {
  systemId: string;
  source: string;
  destination: string;
  esmClass: number;
  dataCoding: number;
  udh: Buffer | undefined;
  text: string;
  messageId: string;
  at: number;
}

export interface SmscOptions {
  /** listen port (default: an ephemeral one) */
  port?: number;
  systemId?: string;
  password?: string;
  /** ms before each submit_sm_resp */
  delayMs?: number;
  /** send a delivery receipt this many ms after each accepted submit (undefined: none) */
  receiptAfterMs?: number;
  /** receipt stat text (DELIVRD) and message_state TLV (2) */
  receiptStat?: string;
  receiptState?: number;
}

function udhOf(ies: Buffer[]): Buffer {
  const body = Buffer.concat(ies);
  return Buffer.concat([Buffer.from([body.length]), body]);
}

export class TestSmsc {
  readonly submits: Submitted[] = [];
  /** statuses for the next submit_sm responses, in order (then 0) */
  readonly failNext: number[] = [];
  binds = 0;
  refusedBinds = 0;
  outstanding = 0;
  peakOutstanding = 0;
  private seq = 1000;
  private sessions = new Set<Session>();
  port = 0;

  private constructor(
    private readonly server: Server,
    public opts: SmscOptions,
  ) {}

  static async start(opts: SmscOptions = {}): Promise<TestSmsc> {
    const server = smpp.createServer({}, (s) => smsc.session(s));
    const smsc = new TestSmsc(server, opts);
    await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
    smsc.port = (server.address() as AddressInfo).port;
    return smsc;
  }

  private session(s: Session): void {
    this.sessions.add(s);
    s.on('close', () => this.sessions.delete(s));
    s.on('error', () => undefined);
    let systemId = '';
    const bind = (pdu: Pdu) => {
      const ok = pdu.system_id === (this.opts.systemId ?? 'vox') && pdu.password === (this.opts.password ?? 'secret');
      if (!ok) {
        this.refusedBinds++;
        s.send(pdu.response({ command_status: smpp.errors.ESME_RINVPASWD }));
        return;
      }
      systemId = String(pdu.system_id);
      this.binds++;
      s.send(pdu.response({ system_id: 'testsmsc' }));
    };
    for (const b of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) s.on(b, bind);
    s.on('enquire_link', (pdu: Pdu) => s.send(pdu.response()));
    s.on('unbind', (pdu: Pdu) => {
      s.send(pdu.response());
      s.close();
    });
    s.on('deliver_sm_resp', () => undefined);
    s.on('submit_sm', (pdu: Pdu) => {
      this.outstanding++;
      this.peakOutstanding = Math.max(this.peakOutstanding, this.outstanding);
      const status = this.failNext.length ? this.failNext.shift()! : 0;
      const answer = () => {
        this.outstanding--;
        if (status) {
          s.send(pdu.response({ command_status: status }));
          return;
        }
        const messageId = `m${(this.seq++).toString(16)}`;
        const sm = pdu.short_message as { udh?: Buffer[]; message?: string };
        this.submits.push({
          systemId,
          source: String(pdu.source_addr),
          destination: String(pdu.destination_addr),
          esmClass: Number(pdu.esm_class),
          dataCoding: Number(pdu.data_coding),
          // the package hands the information elements: the UDH is their length octet and them
          udh: sm.udh?.length ? udhOf(sm.udh) : undefined,
          text: String(sm.message ?? ''),
          messageId,
          at: Date.now(),
        });
        s.send(pdu.response({ message_id: messageId }));
        if (this.opts.receiptAfterMs !== undefined)
          setTimeout(() => this.receipt(s, pdu, messageId), this.opts.receiptAfterMs);
      };
      if (this.opts.delayMs) setTimeout(answer, this.opts.delayMs);
      else answer();
    });
  }

  private receipt(s: Session, pdu: Pdu, messageId: string): void {
    const stat = this.opts.receiptStat ?? 'DELIVRD';
    s.deliver_sm({
      source_addr: pdu.destination_addr,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      short_message: `id:${messageId} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:${stat} err:000 text:`,
      receipted_message_id: messageId,
      message_state: this.opts.receiptState ?? 2,
    });
  }

  /**
   * A mobile-originated message to every bound session: one deliver_sm, or with `parts` > 1 a concatenated one
   * (UDH 05 00 03 ref total seq, the text cut in `parts` pieces). Resolves with the deliver_sm_resp statuses.
   */
  async mo(from: string, to: string, text: string, parts = 1, ref = 42): Promise<number[]> {
    const size = Math.ceil(text.length / parts);
    const out: Promise<number>[] = [];
    for (const s of this.sessions)
      for (let i = 0; i < parts; i++) {
        const piece = text.slice(i * size, (i + 1) * size);
        const short_message = parts > 1 ? { udh: Buffer.from([5, 0, 3, ref, parts, i + 1]), message: piece } : piece;
        out.push(
          new Promise((r) =>
            s.deliver_sm({ source_addr: from, destination_addr: to, esm_class: 0, short_message }, (p: Pdu) =>
              r(p.command_status),
            ),
          ),
        );
      }
    return Promise.all(out);
  }

  /** Drops every connection (as an SMSC restart would). */
  drop(): void {
    for (const s of this.sessions) s.destroy();
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
