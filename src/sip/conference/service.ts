/**
 * Conference rooms: a call of an authenticated SIP user to a room number (tb_confrooms, see getconfroom) is answered
 * by voxswitch itself as the UAS: 200 with its own SDP (its media address, an RTP/RTCP pair from the RTP relay's
 * port pool, the first of PCMU/PCMA the offer lists), the media mixed by the worker (./mixer.ts). The leg is a free
 * on-net call in LiveCalls (quickstat lists it, disccall ends it with a BYE from us, the CDR costs 0, reason
 * "left conference"). In-dialog: ACK, BYE (the participant leaves), CANCEL (200, nothing else: the call is
 * answered), re-INVITE (answered with the same SDP). Rooms live in this process only.
 */
import { generateCallId, generateTag, getHeader, type SipHeader, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import { incomingLeg } from '../dialog/uas.js';
import { sendBye, type DialogLeg } from '../dialog/uac.js';
import type { AuthUser } from '../../domain/accounts/users.js';
import { freeRateFor } from '../../domain/calls/charging.js';
import type { ServerTransaction as Tx, SipTransport } from '../stack.js';
import type { SipServer } from '../server.js';
import type { DialogTable } from '../dialog/table.js';
import type { CallMedia } from '../media/index.js';
import type { DomainServices } from '../../domain/deps.js';
import type { LiveCalls } from '../../domain/calls/livecalls.js';
import { ConferenceMixer } from './mixer.js';
import { chooseCodec, answerSdp } from './sdp.js';
import type { G711 } from './g711.js';
import type { MixerStats } from './protocol.js';
import type { PromptStore } from '../ivr/prompts.js';
import { roomPinGate } from '../ivr/roompin.js';
import type { Respond } from '../product.js';

export interface Participant {
  /** the live call's id (quickstat / disccall) */
  callid: string;
  room: string;
  /** the room owner's user id */
  owner: number;
  user: string;
  userId: number;
  joinedAt: number;
  codec: G711;
  port: number;
  leg: DialogLeg;
  sdp: Buffer;
  ended: boolean;
  acked: boolean;
}

export interface ParticipantView {
  callid: string;
  room: string;
  owner: number;
  user: string;
  joined: number;
  codec: G711;
  port: number;
  packetsIn: number;
  packetsOut: number;
}

const NO_ACK_MS = 32_000;

/** What the conference takes from the B2BUA's shared state (src/sip/calls/core.ts CallCore). */
export interface ConferenceHost {
  services: DomainServices;
  sip: SipServer;
  stack: SipServer['stack'];
  dialogs: DialogTable;
  live: LiveCalls;
  media: CallMedia;
  log: DomainServices['log'];
  respond: Respond;
  contactFor(t: SipTransport): string;
  /** the IVR's prompts (the room PIN) */
  prompts: PromptStore;
}

export class Conference {
  readonly mixer = new ConferenceMixer();
  private readonly rooms = new Map<string, Map<string, Participant>>();
  private stopping = false;

  constructor(private readonly core: ConferenceHost) {}

  /**
   * Joins the caller to the room when `called` is a room number (true: the INVITE is answered here); false when it
   * is not a room (the call is routed as usual).
   */
  async handle(req: SipRequest, tx: ServerTransaction, src: SipSource, user: AuthUser, called: string) {
    const core = this.core;
    const owner = await core.services.numbers.confRoomOwner(called);
    if (owner === undefined) return false;
    const localTag = generateTag();
    const answer = (status: number, reason: string, body?: { type: string; data: Buffer }, headers: SipHeader[] = []) =>
      core.respond(tx, req, status, reason, headers, body, localTag);
    const codec = chooseCodec(req.body, getHeader(req, 'Content-Type'));
    if (!codec) {
      answer(488, 'Not Acceptable Here (the conference takes PCMU or PCMA, offered in the INVITE)');
      return true;
    }
    const members = this.rooms.get(called);
    if (this.stopping || (members?.size ?? 0) >= core.services.config.options.confmaxparticipants) {
      answer(486, this.stopping ? 'Busy Here (server stopping)' : 'Busy Here (conference room full)');
      return true;
    }
    const callid = generateCallId();
    const r = await core.live.reserve({
      callid,
      userId: user.id,
      caller: user.username,
      callee: called,
      route: `conf:${called}`,
      rate: await freeRateFor(core.services.ledger, user.id),
      parties: [user.username],
    });
    if (!r.ok) {
      answer(r.status, r.status === 402 ? 'Payment Required' : r.reason);
      return true;
    }
    let port: number | undefined;
    const fail = async (status: number, reason: string, why: string) => {
      if (port !== undefined) core.media.releaseLocalPair(port);
      answer(status, reason);
      await core.live.finish(callid, '', { reason: why });
    };
    let pair: Awaited<ReturnType<CallMedia['localPair']>>;
    try {
      pair = await core.media.localPair(src.localIp);
      port = pair.port;
      // a room with a PIN: asked in early media on this port before joining (src/sip/ivr/roompin.ts)
      const pin = await core.services.numbers.confRoomPin(called);
      if (pin && !(await roomPinGate(core, core.services.config.options, req, tx, src, localTag, pin, pair))) {
        core.media.releaseLocalPair(port);
        await core.live.finish(callid, '', { reason: 'conference PIN not given' });
        return true;
      }
      await this.mixer.join({
        room: called,
        id: callid,
        codec: codec.codec,
        port: pair.port,
        bindAddr: pair.bindAddr,
        remote: { host: codec.address || src.ip, port: codec.port },
      });
    } catch (e) {
      core.log.warn({ err: String((e as Error)?.message ?? e), room: called }, 'conference join failed');
      await fail(503, 'Service Unavailable (no media port for the conference)', 'conference media unavailable');
      return true;
    }
    if (tx.cancelled) {
      await this.mixer.leave(callid);
      await fail(487, 'Request Terminated', 'cancelled');
      return true;
    }
    const leg = incomingLeg(req, src, localTag);
    const p: Participant = {
      callid,
      room: called,
      owner,
      user: user.username,
      userId: user.id,
      joinedAt: Math.floor(Date.now() / 1000),
      codec: codec.codec,
      port: pair.port,
      leg,
      sdp: answerSdp(pair.address, pair.port, codec.codec),
      ended: false,
      acked: false,
    };
    const room = members ?? new Map<string, Participant>();
    this.rooms.set(called, room);
    room.set(callid, p);
    core.dialogs.add(this.dialogId(p), (r2, t2) => this.inDialog(p, r2, t2));
    core.live.onHangup(callid, '', (reason) => void this.end(p, reason, true));
    const contact = [{ name: 'Contact', value: core.contactFor(src.transport) }];
    answer(200, 'OK', { type: 'application/sdp', data: p.sdp }, contact);
    core.sip.setCallState(user.username, 4);
    await core.live.connected(callid, '', { onMaxDuration: () => void this.end(p, 'max duration', true) });
    setTimeout(() => {
      if (!p.acked) void this.end(p, 'no ACK', true);
    }, NO_ACK_MS).unref();
    core.log.info({ room: called, user: user.username, callid, codec: codec.codec }, 'joined conference');
    return true;
  }

  private dialogId(p: Participant) {
    return { callId: p.leg.callId, localTag: p.leg.localTag, remoteTag: p.leg.remoteTag ?? '' };
  }

  private inDialog(p: Participant, req: SipRequest, tx: ServerTransaction | undefined): void {
    const respond = (status: number, reason: string, body?: { type: string; data: Buffer }) =>
      tx && this.core.respond(tx, req, status, reason, [], body, p.leg.localTag);
    switch (req.method) {
      case 'ACK':
        p.acked = true;
        return;
      case 'BYE':
        respond(200, 'OK');
        void this.end(p, 'left conference', false);
        return;
      case 'CANCEL':
        return void respond(200, 'OK');
      case 'INVITE':
        return void respond(200, 'OK', { type: 'application/sdp', data: p.sdp });
      default:
        return void respond(501, 'Not Implemented');
    }
  }

  /** Ends a participant's leg (BYE from us when `bye`), frees its media and writes its CDR. */
  async end(p: Participant, reason: string, bye: boolean): Promise<void> {
    if (p.ended) return;
    p.ended = true;
    const core = this.core;
    const room = this.rooms.get(p.room);
    room?.delete(p.callid);
    if (room && !room.size) this.rooms.delete(p.room);
    core.dialogs.remove(this.dialogId(p));
    if (bye) sendBye(core.stack, p.leg, core.log);
    core.sip.setCallState(p.user, null);
    await this.mixer.leave(p.callid).catch(() => undefined);
    core.media.releaseLocalPair(p.port);
    await core.live.finish(p.callid, '', { reason });
    core.log.info({ room: p.room, user: p.user, callid: p.callid, reason }, 'left conference');
  }

  /** The active rooms' participants with the worker's packet counters. */
  async participants(room?: string): Promise<ParticipantView[]> {
    const all = [...this.rooms.values()].flatMap((m) => [...m.values()]).filter((p) => !room || p.room === room);
    if (!all.length) return [];
    const counts = new Map((await this.mixer.stats()).participants.map((s) => [s.id, s]));
    return all.map((p) => ({
      callid: p.callid,
      room: p.room,
      owner: p.owner,
      user: p.user,
      joined: p.joinedAt,
      codec: p.codec,
      port: p.port,
      packetsIn: counts.get(p.callid)?.packetsIn ?? 0,
      packetsOut: counts.get(p.callid)?.packetsOut ?? 0,
    }));
  }

  stats(): Promise<MixerStats> {
    return this.mixer.stats();
  }

  /** Server stop: BYE to every participant, CDRs written, the worker ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.rooms.values()].flatMap((m) => [...m.values()]);
    await Promise.allSettled(all.map((p) => this.end(p, 'server shutdown', true)));
    await this.mixer.close();
  }
}
