/**
 * The dialog table: every dialog the call layers (B2BUA, call control) hold, keyed by dialog id (RFC 3261 §12:
 * Call-ID, local tag, remote tag). In-dialog requests (BYE, re-INVITE, ACK, CANCEL, UPDATE, INFO, REFER) go by it
 * to the dialog's owner; the SIP server answers 481 for a dialog nobody holds. A request inside one of our dialogs
 * carries our tag in To and the peer's in From.
 *
 * CANCEL has no To tag (it names the INVITE, not a dialog): it is matched by Call-ID and From tag to the dialog the
 * owner registered for that INVITE.
 */
import type { SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';

export interface DialogId {
  callId: string;
  localTag: string;
  /** '' when the peer sent no tag (RFC 2543 peers) */
  remoteTag: string;
}

/** Handles a request inside one dialog; `tx` is undefined for an ACK (it has no transaction). */
export type InDialogHandler = (
  req: SipRequest,
  tx: ServerTransaction | undefined,
  src: SipSource,
) => void | Promise<void>;

/** The methods routed by dialog id (an INVITE or REFER only when it carries a To tag: a re-INVITE, a transfer). */
export const IN_DIALOG_METHODS: ReadonlySet<string> = new Set([
  'BYE',
  'INVITE',
  'ACK',
  'CANCEL',
  'UPDATE',
  'INFO',
  'REFER',
]);

const keyOf = (callId: string, localTag: string, remoteTag: string) => `${callId}\u0000${localTag}\u0000${remoteTag}`;
const inviteKey = (callId: string, remoteTag: string) => `${callId}\u0000${remoteTag}`;

export class DialogTable {
  private readonly dialogs = new Map<string, InDialogHandler>();
  /** Call-ID + remote tag → dialog key, for CANCEL */
  private readonly byInvite = new Map<string, string>();

  /** Registers a dialog and its owner's handler (replaces an earlier handler of the same id). */
  add(id: DialogId, handler: InDialogHandler): void {
    const key = keyOf(id.callId, id.localTag, id.remoteTag);
    this.dialogs.set(key, handler);
    this.byInvite.set(inviteKey(id.callId, id.remoteTag), key);
  }

  /** Forgets a dialog (no-op when unknown). */
  remove(id: DialogId): void {
    const key = keyOf(id.callId, id.localTag, id.remoteTag);
    this.dialogs.delete(key);
    const ik = inviteKey(id.callId, id.remoteTag);
    if (this.byInvite.get(ik) === key) this.byInvite.delete(ik);
  }

  has(id: DialogId): boolean {
    return this.dialogs.has(keyOf(id.callId, id.localTag, id.remoteTag));
  }

  get size(): number {
    return this.dialogs.size;
  }

  /** The handler of the dialog a request belongs to; undefined when no dialog of ours matches. */
  lookup(req: SipRequest): InDialogHandler | undefined {
    const core = req.core;
    const callId = core?.callId;
    if (!callId) return undefined;
    const remoteTag = core.from?.tag ?? '';
    const localTag = core.to?.tag;
    if (localTag) return this.dialogs.get(keyOf(callId, localTag, remoteTag));
    if (req.method !== 'CANCEL') return undefined;
    const key = this.byInvite.get(inviteKey(callId, remoteTag));
    return key ? this.dialogs.get(key) : undefined;
  }
}
