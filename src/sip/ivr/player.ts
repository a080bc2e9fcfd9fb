/**
 * Sending audio as RTP (RFC 3550): 20 ms frames of 160 G.711 bytes, one SSRC per call, the sequence number +1 and
 * the timestamp +160 per frame, the marker bit on the first frame of each prompt (the start of a talkspurt); the
 * frames are paced on the wall clock (a late timer sends the frames due at once, so the stream never drifts).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';

export const FRAME = 160;
const FRAME_MS = 20;

export class RtpPlayer {
  private seq: number;
  private ts: number;
  readonly ssrc: number;
  private timer?: NodeJS.Timeout;
  private done?: () => void;
  /** frames sent (for tests and figures) */
  sent = 0;

  constructor(
    private readonly socket: Socket,
    public remote: { host: string; port: number },
    private readonly payloadType: number,
    /** the codec's silence byte (PCMU 0xff, PCMA 0xd5), for the padding of the last frame */
    private readonly silence = 0xff,
  ) {
    const r = randomBytes(10);
    this.seq = r.readUInt16BE(0);
    this.ts = r.readUInt32BE(2);
    this.ssrc = r.readUInt32BE(6);
  }

  /** One RTP packet of `payload` (exported for tests). */
  packet(payload: Buffer, marker: boolean): Buffer {
    const p = Buffer.alloc(12 + payload.length, 0xff);
    p[0] = 0x80;
    p[1] = (marker ? 0x80 : 0) | this.payloadType;
    p.writeUInt16BE(this.seq, 2);
    p.writeUInt32BE(this.ts >>> 0, 4);
    p.writeUInt32BE(this.ssrc, 8);
    payload.copy(p, 12);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME) >>> 0;
    return p;
  }

  /** Plays `audio` (G.711 bytes, padded with silence to whole frames); resolves when sent or stopped. */
  play(audio: Buffer): Promise<void> {
    this.stop();
    const frames = Math.ceil(audio.length / FRAME);
    const start = Date.now();
    let i = 0;
    return new Promise<void>((resolve) => {
      this.done = resolve;
      const tick = () => {
        const due = Math.min(frames, Math.floor((Date.now() - start) / FRAME_MS) + 1);
        for (; i < due; i++) {
          const chunk = audio.subarray(i * FRAME, (i + 1) * FRAME);
          const payload =
            chunk.length === FRAME ? chunk : Buffer.concat([chunk, Buffer.alloc(FRAME - chunk.length, this.silence)]);
          this.sent++;
          try {
            this.socket.send(this.packet(payload, i === 0), this.remote.port, this.remote.host);
          } catch {
            // the socket was closed: the call ended
            return this.stop();
          }
        }
        if (i >= frames) return this.stop();
        this.timer = setTimeout(tick, Math.max(1, start + i * FRAME_MS - Date.now()));
      };
      tick();
    });
  }

  /** Stops the prompt being played (its play() resolves). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const d = this.done;
    this.done = undefined;
    d?.();
  }
}
