/**
 * One caller's IVR media: an RTP socket on a port of the relay's pool (the port its SDP answer shows), prompts played
 * to the caller's address (latched to where its RTP comes from, symmetric RTP), RFC 4733 events and SIP INFO digits
 * collected. Used in early media (183 Session Progress with this SDP) by the access numbers and room PINs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { DtmfReceiver, telephoneEventPayloadType } from './dtmf.js';
import { DigitCollector, type Collected, type CollectOptions } from './collect.js';
import { RtpPlayer } from './player.js';
import type { PromptName, PromptStore } from './prompts.js';
import { PAYLOAD_TYPE, type G711 } from '../conference/g711.js';

/** The IVR's SDP answer: one audio stream, the chosen codec and telephone-event with the offer's payload type. */
export function ivrAnswerSdp(address: string, port: number, codec: G711, eventPt: number | undefined): Buffer {
  const ip = address.includes(':') ? 'IP6' : 'IP4';
  const pt = PAYLOAD_TYPE[codec];
  const te = eventPt ?? 101;
  const id = Date.now() % 1_000_000_000;
  const lines = [
    'v=0',
    `o=voxswitch ${id} 1 IN ${ip} ${address}`,
    's=voxswitch ivr',
    `c=IN ${ip} ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${pt} ${te}`,
    `a=rtpmap:${pt} ${codec === 'pcmu' ? 'PCMU' : 'PCMA'}/8000`,
    `a=rtpmap:${te} telephone-event/8000`,
    `a=fmtp:${te} 0-15`,
    'a=ptime:20',
    'a=sendrecv',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

export interface IvrMediaOptions {
  port: number;
  bindAddr: string;
  remote: { host: string; port: number };
  codec: G711;
  /** the caller's SDP offer (for its telephone-event payload type) */
  offer: Buffer;
  prompts: PromptStore;
}

export class IvrMedia {
  readonly dtmf: DtmfReceiver;
  readonly digits = new DigitCollector();
  private readonly player: RtpPlayer;
  private closed = false;
  /** digits received (RTP or INFO), in order, for the log */
  heard = '';

  private constructor(
    private readonly socket: Socket,
    private readonly o: IvrMediaOptions,
  ) {
    this.dtmf = new DtmfReceiver(telephoneEventPayloadType(o.offer) ?? 101);
    this.player = new RtpPlayer(socket, o.remote, PAYLOAD_TYPE[o.codec], o.codec === 'pcmu' ? 0xff : 0xd5);
    this.dtmf.onDigit = (d) => {
      this.heard += d;
      this.player.stop(); // a key press interrupts the prompt (barge-in)
      this.digits.push(d);
    };
    socket.on('message', (pkt, rinfo) => {
      this.player.remote = { host: rinfo.address, port: rinfo.port };
      this.dtmf.rtp(pkt);
    });
    socket.on('error', () => undefined);
  }

  /** Binds the RTP socket (the port handed out by CallMedia.localPair). */
  static async open(o: IvrMediaOptions): Promise<IvrMedia> {
    const socket = createSocket({ type: isIP(o.bindAddr) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, o.bindAddr, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new IvrMedia(socket, o);
  }

  /** Plays a prompt to its end (or until a key is pressed). */
  async say(name: PromptName): Promise<void> {
    if (this.closed) return;
    const audio = await this.o.prompts.get(name, this.o.codec);
    if (!this.closed) await this.player.play(audio);
  }

  /** Plays a prompt, then collects a number (keys pressed during the prompt count). */
  async ask(name: PromptName, o: CollectOptions): Promise<Collected> {
    await this.say(name);
    if (this.closed) return { kind: 'aborted' };
    return this.digits.collect(o);
  }

  /** RTP frames sent so far (tests). */
  get framesSent(): number {
    return this.player.sent;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.player.stop();
    this.digits.abort();
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
