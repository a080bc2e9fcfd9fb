/**
 * The conference mix of one 20 ms frame (160 samples at 8 kHz): every participant hears the sum of the others
 * (the sum of all minus its own frame) plus the room's tones, clamped to 16 bits. Pure functions, used by the
 * mixer worker (./mixer-worker.ts) and tested alone.
 */

export const FRAME_SAMPLES = 160;
export const SAMPLE_RATE = 8000;

function clamp16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/**
 * Mixes one frame per participant. `frames[i]` is participant i's frame (silence when it sent none),
 * `extra[i]` an optional signal added to participant i's output only (tones). Returns one output per participant.
 */
export function mixFrames(
  frames: ReadonlyArray<Int16Array>,
  extra: ReadonlyArray<Int16Array | undefined> = [],
  outs: Int16Array[] = [],
): Int16Array[] {
  const n = frames[0]?.length ?? FRAME_SAMPLES;
  const sum = new Int32Array(n);
  for (const f of frames) for (let k = 0; k < n; k++) sum[k]! += f[k]!;
  for (let i = 0; i < frames.length; i++) {
    const own = frames[i]!;
    const add = extra[i];
    const out = outs[i] ?? (outs[i] = new Int16Array(n));
    for (let k = 0; k < n; k++) out[k] = clamp16(sum[k]! - own[k]! + (add ? add[k]! : 0));
  }
  outs.length = frames.length;
  return outs;
}

/** A sine beep of `ms` milliseconds at `hz`, amplitude `amp` (linear), with 5 ms fade in/out. */
export function beep(hz: number, ms: number, amp = 6000): Int16Array {
  const n = Math.round((SAMPLE_RATE * ms) / 1000);
  const fade = SAMPLE_RATE / 200;
  const out = new Int16Array(n);
  for (let k = 0; k < n; k++) {
    const env = Math.min(1, k / fade, (n - 1 - k) / fade);
    out[k] = Math.round(amp * env * Math.sin((2 * Math.PI * hz * k) / SAMPLE_RATE));
  }
  return out;
}

/** The join tone (rising two notes) and the leave tone (falling), 200 ms each. */
export const JOIN_TONE = concat(beep(660, 100), beep(880, 100));
export const LEAVE_TONE = concat(beep(880, 100), beep(660, 100));

function concat(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Root-mean-square level of a frame (0 for silence). */
export function rms(frame: Int16Array): number {
  let s = 0;
  for (let k = 0; k < frame.length; k++) s += frame[k]! * frame[k]!;
  return frame.length ? Math.sqrt(s / frame.length) : 0;
}
