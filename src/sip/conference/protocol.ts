/** Messages between the conference service (main thread) and the mixer worker (./mixer-worker.ts). */
import type { G711 } from './g711.js';

export interface JoinMsg {
  t: 'join';
  /** request id, echoed in the answer */
  rid: number;
  room: string;
  /** participant id (the call id of its leg) */
  id: string;
  codec: G711;
  /** local RTP port (reserved from the main thread's port pool; RTCP on port + 1) and bind address */
  port: number;
  bindAddr: string;
  /** where the participant's SDP says to send RTP (until the first packet latches its source) */
  remote: { host: string; port: number };
}

export interface LeaveMsg {
  t: 'leave';
  rid: number;
  id: string;
}

export interface StatsMsg {
  t: 'stats';
  rid: number;
}

/**
 * Call listening (src/sip/monitor): a listener gets a room of its own where the two sides of the listened call are
 * fed in (FeedMsg) and it hears their sum; what it sends is read and dropped, no tones. Ended by a LeaveMsg of `id`.
 */
export interface MonitorMsg {
  t: 'monitor';
  rid: number;
  /** the listener's id */
  id: string;
  codec: G711;
  port: number;
  bindAddr: string;
  remote: { host: string; port: number };
}

/** One RTP packet of a listened call's side (no answer is sent; the packet's payload type says its codec). */
export interface FeedMsg {
  t: 'feed';
  /** the listener's id */
  id: string;
  side: 'a' | 'b';
  packet: Uint8Array;
}

export type ToWorker = JoinMsg | LeaveMsg | StatsMsg | MonitorMsg | FeedMsg | { t: 'close'; rid: number };

export interface ParticipantStats {
  id: string;
  room: string;
  codec: G711;
  port: number;
  packetsIn: number;
  packetsOut: number;
}

export interface MixerStats {
  participants: ParticipantStats[];
  /** mixing ticks run, ticks that ran late or took longer than a frame */
  ticks: number;
  underruns: number;
  /** the longest tick's work (ms) */
  maxTickMs: number;
}

export type FromWorker =
  | { t: 'ok'; rid: number }
  | { t: 'error'; rid: number; error: string }
  | { t: 'stats'; rid: number; stats: MixerStats };
