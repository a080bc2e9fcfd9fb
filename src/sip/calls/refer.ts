/**
 * REFER (RFC 3515) pieces of the transfer (./transfer.ts): the Refer-To header read into a target and an optional
 * Replaces (RFC 3891, carried as a header of the Refer-To URI), and the implicit subscription's NOTIFYs
 * (message/sipfrag with the status line of the transfer's outcome) sent to the referrer inside its dialog.
 */
import { parseUri, uriUser, type SipHeader } from '../message/index.js';
import { sendInDialog } from '../dialog/uac.js';
import type { CallCore, Leg } from './core.js';

/** The dialog a Replaces names (RFC 3891 §6.1): its Call-ID and the tags as the referrer sees them. */
export interface Replaces {
  callId: string;
  toTag: string;
  fromTag: string;
}

export interface ReferTarget {
  /** the user part of the Refer-To URI: the number or username to call */
  user: string;
  replaces?: Replaces;
}

/**
 * Reads a Refer-To value: `<sip:C@host>`, `<sip:C@host?Replaces=id%3Bto-tag%3Dx%3Bfrom-tag%3Dy>` or a bare URI.
 * Undefined when it is not a SIP URI with a user part, or when a Replaces lacks its Call-ID or a tag.
 */
export function parseReferTo(value: string): ReferTarget | undefined {
  const v = value.trim();
  const m = /<([^>]*)>/.exec(v);
  const raw = m ? m[1]! : v.split(';')[0]!.trim();
  const q = raw.indexOf('?');
  const uriPart = q < 0 ? raw : raw.slice(0, q);
  const uri = parseUri(uriPart);
  if (!uri || uri.kind !== 'sip') return undefined;
  const user = uriUser(uri);
  if (!user) return undefined;
  if (q < 0) return { user };
  let replaces: Replaces | undefined;
  for (const h of raw.slice(q + 1).split('&')) {
    const eq = h.indexOf('=');
    if (eq < 0 || h.slice(0, eq).toLowerCase() !== 'replaces') continue;
    let text: string;
    try {
      text = decodeURIComponent(h.slice(eq + 1));
    } catch {
      return undefined;
    }
    const [callId, ...params] = text.split(';').map((s) => s.trim());
    const tag = (n: string) =>
      params.find((p) => p.toLowerCase().startsWith(`${n}=`))?.slice(n.length + 1) ?? undefined;
    const toTag = tag('to-tag');
    const fromTag = tag('from-tag');
    if (!callId || !toTag || !fromTag) return undefined;
    replaces = { callId, toTag, fromTag };
  }
  return { user, replaces };
}

/** The NOTIFYs of one REFER's implicit subscription (RFC 3515 §2.4.4), on the referrer's leg. */
export class ReferNotifier {
  private ended = false;

  constructor(
    private readonly core: CallCore,
    private readonly leg: Leg,
    /** the REFER's CSeq when it was not the first REFER of the dialog (the subscription's id) */
    private readonly id?: number,
  ) {}

  /** A progress NOTIFY (subscription still active), e.g. 100 Trying. */
  progress(status: number, reason: string): void {
    if (!this.ended) this.send(status, reason, 'active;expires=60');
  }

  /** The final NOTIFY: the outcome's status line; the subscription ends with it. Sent once. */
  final(status: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.send(status, reason, 'terminated;reason=noresource');
  }

  get done(): boolean {
    return this.ended;
  }

  private send(status: number, reason: string, state: string): void {
    const core = this.core;
    const headers: SipHeader[] = [
      { name: 'Event', value: this.id === undefined ? 'refer' : `refer;id=${this.id}` },
      { name: 'Subscription-State', value: state },
      { name: 'Contact', value: core.contactFor(this.leg.target.transport) },
    ];
    const frag = Buffer.from(`SIP/2.0 ${status} ${reason}\r\n`);
    sendInDialog(
      core.stack,
      this.leg,
      'NOTIFY',
      { type: 'message/sipfrag;version=2.0', data: frag },
      headers,
      core.log,
    );
  }
}
