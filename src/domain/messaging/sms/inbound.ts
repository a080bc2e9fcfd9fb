/**
 * Mobile-originated SMS: the parts of a concatenated message are put back together (by gateway, sender, number
 * and reference, in memory for 10 minutes), then the whole text goes to the MO handling (mobile.ts: the charge,
 * then the handler the composition root wires). A part is answered once it is held; the parts of a complete
 * message stay held until it was handled (`done`), so when its handling fails and the SMSC delivers the last part
 * again, the message is complete again. A process stop loses the parts of a message not yet handled.
 */
import type { InboundSms } from './transport.js';

export interface MobileOriginated {
  gateway: string;
  from: string;
  to: string;
  text: string;
  /** parts it came in (1: a single SMS) */
  parts: number;
  /** the concatenation reference of a long message */
  ref?: number;
}

const HOLD_MS = 10 * 60_000;

const keyOf = (gateway: string, from: string, to: string, ref: number, total: number) =>
  `${gateway}\n${from}\n${to}\n${ref}\n${total}`;

export class Reassembly {
  private pending = new Map<string, { parts: Map<number, string>; total: number; at: number }>();

  /** The whole message when this part completes it (or is a single message), else undefined. */
  add(m: InboundSms, now = Date.now()): MobileOriginated | undefined {
    const whole = { gateway: m.gateway, from: m.source, to: m.destination };
    const c = m.concat;
    if (!c || c.total <= 1) return { ...whole, text: m.text, parts: 1 };
    for (const [k, v] of this.pending) if (now - v.at > HOLD_MS) this.pending.delete(k);
    const key = keyOf(m.gateway, m.source, m.destination, c.ref, c.total);
    let e = this.pending.get(key);
    if (!e) {
      e = { parts: new Map(), total: c.total, at: now };
      this.pending.set(key, e);
    }
    e.parts.set(c.seq, m.text);
    if (e.parts.size < e.total) return undefined;
    let text = '';
    for (let i = 1; i <= e.total; i++) text += e.parts.get(i) ?? '';
    return { ...whole, text, parts: e.total, ref: c.ref };
  }

  /** Forgets the parts of a message that was handled (delivered, or refused for good). */
  done(m: MobileOriginated): void {
    if (m.ref !== undefined) this.pending.delete(keyOf(m.gateway, m.from, m.to, m.ref, m.parts));
  }
}
