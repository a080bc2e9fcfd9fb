/**
 * Call listening (voicehere): forks the relayed RTP of a live call to a listener. The listener is a SIP user with a
 * registered phone: voxswitch calls it (we are the UAC; From "voicehere", a send-only PCMU/PCMA offer on an RTP pair
 * from the relay's port pool, the phone of the highest q / latest registration, ringing at most RING_MS). Once it
 * answers, a tap on the call's relay session posts each RTP packet of both sides to the conference mixer worker,
 * which sends the listener their sum in the codec its answer chose (the first of PCMU/PCMA it lists).
 *
 * The fork ends when the listener hangs up (its BYE: the call goes on), when the call ends (its relay session is
 * released: BYE to the listener; a listener still ringing is CANCELled) and at server stop. A call whose media do
 * not pass through the relay, an unknown or unconnected call, a listener without a registered phone, a refusal or a
 * listener that does not answer: a MonitorError saying which (the API's ERROR).
 */
import {
  generateCallId,
  generateTag,
  getHeader,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import type { ClientTransaction, ServerTransaction, SipTransport } from '../stack.js';
import type { SipServer } from '../server.js';
import type { DialogTable } from '../dialog/table.js';
import { cancelInvite, confirmLeg, newLeg, sendAck, sendBye, type DialogLeg } from '../dialog/uac.js';
import type { CallMedia, RelaySession } from '../media/index.js';
import type { ConferenceMixer } from '../conference/mixer.js';
import { chooseCodec } from '../conference/sdp.js';
import type { G711 } from '../conference/g711.js';
import { productToken } from '../product.js';
import { listenerOffer } from './sdp.js';
import { DomainError, type ErrorKind } from '../../domain/errors.js';
import type { DomainServices } from '../../domain/deps.js';

/** How long the listener's phone may ring before the fork is given up (ms). */
export const RING_MS = 30_000;

export class MonitorError extends DomainError {
  constructor(message: string, kind: ErrorKind = 'conflict') {
    super(message, kind);
  }
}

/** A live call as the B2BUA shows it to the monitor. */
export interface ListenedCall {
  id: string;
  state: string;
  caller: string;
  callee: string;
  /** its relay session; undefined when its media go end to end */
  session?: RelaySession;
}

/** What the monitor takes from the B2BUA's shared state (src/sip/calls/core.ts CallCore). */
export interface MonitorHost {
  services: DomainServices;
  sip: SipServer;
  stack: SipServer['stack'];
  dialogs: DialogTable;
  media: CallMedia;
  log: DomainServices['log'];
  respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    reason?: string,
    headers?: SipHeader[],
    body?: { type: string; data: Buffer },
    toTag?: string,
  ): void;
  contactFor(t: SipTransport): string;
  ourUri(user: string, t: SipTransport): string;
}

interface Listener {
  /** the listener leg's Call-ID, also its id in the mixer */
  id: string;
  callid: string;
  user: string;
  codec: G711;
  port: number;
  leg: DialogLeg;
  offer: Buffer;
  startedAt: number;
  ended: boolean;
  untap: () => void;
  unclose: () => void;
}

export interface ListenerView {
  id: string;
  callid: string;
  listener: string;
  codec: G711;
  port: number;
  started: number;
  /** RTP packets the listener was sent and the packets of each side fed to its mix */
  packetsOut: number;
  fedA: number;
  fedB: number;
}

export class CallMonitor {
  private readonly listeners = new Map<string, Listener>();
  private stopping = false;

  constructor(
    private readonly host: MonitorHost,
    /** the mixer worker (the conference rooms' one) */
    private readonly mixer: ConferenceMixer,
    /** the live call of this process with that id (undefined when none) */
    private readonly find: (callid: string) => ListenedCall | undefined,
  ) {}

  /** Calls `user` and forks the call's media to it once it answers; resolves with the running fork. */
  async listen(callid: string, user: string): Promise<ListenerView> {
    const host = this.host;
    if (this.stopping) throw new MonitorError('the server is stopping', 'unavailable');
    const call = this.find(callid);
    if (!call) throw new MonitorError(`no live call with id ${callid} in this process (see quickstat)`, 'notfound');
    if (call.state !== 'connected') throw new MonitorError(`call ${callid} is not connected yet (${call.state})`);
    const session = call.session;
    if (!session || session.closed) {
      throw new MonitorError(
        `the media of call ${callid} do not pass through voxswitch (not relayed under ` +
          `rtprelay=${host.services.config.options.rtprelay}); with rtprelay=always every new call can be listened to`,
      );
    }
    const bindings = [...host.sip.location.lookup(user)].sort((x, y) => y.q - x.q || y.registeredAt - x.registeredAt);
    const b = bindings[0];
    if (!b) throw new MonitorError(`listener ${user} has no registered phone`, 'notfound');
    let pair: Awaited<ReturnType<CallMedia['localPair']>>;
    try {
      pair = await host.media.localPair(host.stack.localAddress(b.transport)?.host);
    } catch (e) {
      throw new MonitorError(`no RTP port for the listener: ${(e as Error).message}`, 'unavailable');
    }
    const offer = listenerOffer(pair.address, pair.port);
    const leg = newLeg({
      callId: generateCallId(),
      localTag: generateTag(),
      fromUri: host.ourUri('voicehere', b.transport),
      fromDisplay: '"voicehere"',
      toUri: host.ourUri(user, b.transport),
      ruri: b.contact,
      target: { transport: b.transport, host: b.srcIp, port: b.srcPort, connId: b.connId },
      extra: [
        { name: 'Contact', value: host.contactFor(b.transport) },
        { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' },
        { name: 'User-Agent', value: productToken(host.services) },
      ],
      body: offer,
      contentType: 'application/sdp',
    });
    const gone = () => session.closed || this.stopping;
    const fail = (message: string, kind: ErrorKind = 'conflict') => {
      host.media.releaseLocalPair(pair.port);
      return new MonitorError(message, kind);
    };
    const res = await this.invite(leg, session);
    if (typeof res === 'string')
      throw fail(`listener ${user}: ${res}`, res.startsWith('call') ? 'conflict' : 'unavailable');
    if (res.status >= 300) throw fail(`listener ${user} refused: ${res.status} ${res.reason}`.trim());
    confirmLeg(leg, res);
    sendAck(host.stack, leg, undefined, host.log);
    const hangUp = (message: string, kind?: ErrorKind) => {
      sendBye(host.stack, leg, host.log);
      return fail(message, kind);
    };
    if (gone()) throw hangUp(`call ${callid} ended before the listener answered`);
    const codec = chooseCodec(res.body, getHeader(res, 'Content-Type'));
    if (!codec) throw hangUp(`listener ${user}'s answer takes neither PCMU nor PCMA`, 'input');
    const id = leg.callId;
    try {
      await this.mixer.monitor({
        id,
        codec: codec.codec,
        port: pair.port,
        bindAddr: pair.bindAddr,
        remote: { host: codec.address || b.srcIp, port: codec.port },
      });
    } catch (e) {
      throw hangUp(`the listener's media could not start: ${(e as Error).message}`, 'unavailable');
    }
    const l: Listener = {
      id,
      callid,
      user,
      codec: codec.codec,
      port: pair.port,
      leg,
      offer,
      startedAt: Math.floor(Date.now() / 1000),
      ended: false,
      untap: session.tap((side, packet) => this.mixer.feed(id, side, packet)),
      unclose: () => undefined,
    };
    this.listeners.set(id, l);
    host.dialogs.add(this.dialogId(l), (r, tx) => this.inDialog(l, r, tx));
    l.unclose = session.onClose(() => void this.end(l, 'call ended', true));
    if (gone()) await this.end(l, 'call ended', true); // ended while the mixer bound the sockets
    if (l.ended) throw new MonitorError(`call ${callid} ended as the listener answered`);
    host.log.info({ callid, listener: user, codec: codec.codec, id }, 'call listening started');
    return (await this.list(callid)).find((v) => v.id === id) ?? this.view(l);
  }

  /**
   * Sends the listener leg's INVITE and waits for its final answer (a 2xx retransmission is ACKed again); the call
   * ending meanwhile CANCELs it. A string says why there is no answer.
   */
  private invite(leg: DialogLeg & { invite?: SipRequest }, session: RelaySession): Promise<SipResponse | string> {
    const host = this.host;
    return new Promise((resolve) => {
      let settled = false;
      let ack: SipRequest | undefined;
      let ct: ClientTransaction;
      let stopWatch = () => undefined as unknown;
      const settle = (v: SipResponse | string) => {
        if (settled) return;
        settled = true;
        clearTimeout(ring);
        stopWatch();
        resolve(v);
      };
      try {
        ct = host.stack.request(leg.invite!, leg.target);
      } catch (e) {
        return resolve(`not reachable (${(e as Error).message})`);
      }
      const ring = setTimeout(() => {
        cancelInvite(ct);
        settle(`no answer within ${RING_MS / 1000} s`);
      }, RING_MS);
      ring.unref();
      stopWatch = session.onClose(() => {
        cancelInvite(ct);
        settle('call ended before the listener answered');
      });
      ct.on('final', (res: SipResponse) => {
        const ok = res.status >= 200 && res.status < 300;
        if (!settled) return settle(res);
        if (!ok) return;
        if (ack) return void host.stack.request(ack, leg.target); // a retransmitted 2xx
        // answered after we gave up (the CANCEL crossed the 2xx): ACK and hang that dialog up
        confirmLeg(leg, res);
        ack = sendAck(host.stack, leg, undefined, host.log);
        sendBye(host.stack, leg, host.log);
      });
      ct.on('timeout', () => settle('no answer (timeout)'));
      ct.on('transport-error', () => settle('not reachable (transport error)'));
    });
  }

  private dialogId(l: Listener) {
    return { callId: l.leg.callId, localTag: l.leg.localTag, remoteTag: l.leg.remoteTag ?? '' };
  }

  private inDialog(l: Listener, req: SipRequest, tx: ServerTransaction | undefined): void {
    const respond = (status: number, reason: string, body?: { type: string; data: Buffer }) =>
      tx && this.host.respond(tx, req, status, reason, [], body, l.leg.localTag);
    switch (req.method) {
      case 'ACK':
        return;
      case 'BYE':
        respond(200, 'OK');
        return void this.end(l, 'listener hung up', false);
      case 'INVITE': // a session refresh or hold of the listener's phone: the same stream goes on
        return void respond(200, 'OK', { type: 'application/sdp', data: l.offer });
      default:
        return void respond(501, 'Not Implemented');
    }
  }

  /** Ends a fork: the tap removed, the mixer's listener room closed, BYE to the listener when `bye`. */
  async end(l: Listener, reason: string, bye: boolean): Promise<void> {
    if (l.ended) return;
    l.ended = true;
    l.untap();
    l.unclose();
    this.listeners.delete(l.id);
    this.host.dialogs.remove(this.dialogId(l));
    if (bye) sendBye(this.host.stack, l.leg, this.host.log);
    await this.mixer.leave(l.id).catch(() => undefined);
    this.host.media.releaseLocalPair(l.port);
    this.host.log.info({ callid: l.callid, listener: l.user, id: l.id, reason }, 'call listening ended');
  }

  private view(l: Listener, stats?: Map<string, { packetsIn: number; packetsOut: number }>): ListenerView {
    return {
      id: l.id,
      callid: l.callid,
      listener: l.user,
      codec: l.codec,
      port: l.port,
      started: l.startedAt,
      packetsOut: stats?.get(l.id)?.packetsOut ?? 0,
      fedA: stats?.get(`${l.id}/a`)?.packetsIn ?? 0,
      fedB: stats?.get(`${l.id}/b`)?.packetsIn ?? 0,
    };
  }

  /** The running forks (of one call, or all) with the mixer's packet counters. */
  async list(callid?: string): Promise<ListenerView[]> {
    const all = [...this.listeners.values()].filter((l) => !callid || l.callid === callid);
    if (!all.length) return [];
    const stats = new Map((await this.mixer.stats()).participants.map((s) => [s.id, s]));
    return all.map((l) => this.view(l, stats));
  }

  /** Server stop: BYE to every listener. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.listeners.values()].map((l) => this.end(l, 'server shutdown', true)));
  }
}
