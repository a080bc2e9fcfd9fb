/**
 * Mobile-originated SMS: the parts of a concatenated message are put back together (by gateway, sender and
 * reference, in memory for 10 minutes), then the whole text goes to the handler the composition root wires (to a
 * user's DID: a SIP MESSAGE, or the offline IM store). A part is answered once it is held; a process stop loses
 * the parts of a message not yet complete.
 */
import type { InboundSms } from './transport.js';

export interface MobileOriginated {
  gateway: string;
  from: string;
  to: string;
  text: string;
}

const HOLD_MS = 10 * 60_000;

export class Reassembly {
  private pending = new Map<string, { parts: Map<number, string>; total: number; at: number }>();

  /** The whole message when this part completes it (or is a single message), else undefined. */
  add(m: InboundSms, now = Date.now()): MobileOriginated | undefined {
    const whole = { gateway: m.gateway, from: m.source, to: m.destination };
    const c = m.concat;
    if (!c || c.total <= 1) return { ...whole, text: m.text };
    for (const [k, v] of this.pending) if (now - v.at > HOLD_MS) this.pending.delete(k);
    const key = `${m.gateway}\n${m.source}\n${m.destination}\n${c.ref}\n${c.total}`;
    let e = this.pending.get(key);
    if (!e) {
      e = { parts: new Map(), total: c.total, at: now };
      this.pending.set(key, e);
    }
    e.parts.set(c.seq, m.text);
    if (e.parts.size < e.total) return undefined;
    this.pending.delete(key);
    let text = '';
    for (let i = 1; i <= e.total; i++) text += e.parts.get(i) ?? '';
    return { ...whole, text };
  }
}
