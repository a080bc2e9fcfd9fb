/**
 * The IVR's voice prompts: G.711 WAV files (8 kHz mono, µ-law) in `<datadir>/prompts/<name>.wav`. A missing file is
 * made on first use: spoken by espeak-ng and converted by sox when both are installed, else a tone pattern (each
 * prompt its own, so a caller can still tell them apart; logged once as a warning). An operator may put recorded
 * files of the same names there (µ-law, A-law or 16-bit PCM WAV at 8 kHz mono).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decode, encode, type G711 } from '../conference/g711.js';

const run = promisify(execFile);

/** The prompts and what each says. */
export const PROMPTS = {
  enterpin: 'Please enter your PIN, then press hash.',
  enternumber: 'Please enter the number you want to call, then press hash.',
  wrongpin: 'Wrong PIN.',
  goodbye: 'Goodbye.',
  nocredit: 'You do not have enough credit for this call.',
  noroute: 'This number cannot be reached.',
  confpin: 'Please enter the conference PIN, then press hash.',
} as const;

export type PromptName = keyof typeof PROMPTS;

/** A tone pattern per prompt, for machines without espeak-ng: [frequency Hz, ms] steps (0 Hz: silence). */
const TONES: Record<PromptName, Array<[number, number]>> = {
  enterpin: [
    [440, 300],
    [0, 100],
    [660, 300],
  ],
  enternumber: [
    [440, 300],
    [0, 100],
    [880, 300],
  ],
  wrongpin: [[300, 600]],
  goodbye: [
    [660, 200],
    [0, 100],
    [440, 400],
  ],
  nocredit: [
    [300, 200],
    [0, 100],
    [300, 200],
  ],
  noroute: [
    [950, 330],
    [1400, 330],
    [1800, 330],
  ],
  confpin: [
    [520, 300],
    [0, 100],
    [780, 300],
  ],
};

/** A WAV file: `RIFF` … `fmt ` (format 1 PCM 16-bit, 6 A-law or 7 µ-law; 8000 Hz mono) … `data`. */
export function parseWav(buf: Buffer): Int16Array {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE')
    throw new Error('not a WAV file');
  let format = 0;
  let bits = 0;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = buf.subarray(off + 8, Math.min(buf.length, off + 8 + size));
    if (id === 'fmt ') {
      if (body.length < 16) throw new Error('WAV fmt chunk too short');
      format = body.readUInt16LE(0);
      const channels = body.readUInt16LE(2);
      const rate = body.readUInt32LE(4);
      bits = body.readUInt16LE(14);
      if (channels !== 1 || rate !== 8000) throw new Error(`WAV must be 8000 Hz mono (is ${rate} Hz, ${channels} ch)`);
    } else if (id === 'data') {
      if (format === 7 || format === 6) return decode(format === 7 ? 'pcmu' : 'pcma', body);
      if (format === 1 && bits === 16) {
        const out = new Int16Array(body.length >> 1);
        for (let i = 0; i < out.length; i++) out[i] = body.readInt16LE(i * 2);
        return out;
      }
      throw new Error(`WAV format ${format}/${bits} bits: expected µ-law, A-law or 16-bit PCM`);
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('WAV without data chunk');
}

/** A µ-law WAV file of linear samples (8000 Hz mono). */
export function ulawWav(samples: Int16Array): Buffer {
  const data = Buffer.from(encode('pcmu', samples));
  const h = Buffer.alloc(46);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(38 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(18, 16);
  h.writeUInt16LE(7, 20); // WAVE_FORMAT_MULAW
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000, 28);
  h.writeUInt16LE(1, 32);
  h.writeUInt16LE(8, 34);
  h.writeUInt16LE(0, 36);
  h.write('data', 38, 'latin1');
  h.writeUInt32LE(data.length, 42);
  return Buffer.concat([h, data]);
}

/** The tone pattern of a prompt as samples. */
export function toneSamples(name: PromptName): Int16Array {
  const steps = TONES[name];
  const total = steps.reduce((n, [, ms]) => n + ms * 8, 0);
  const out = new Int16Array(total);
  let i = 0;
  for (const [hz, ms] of steps) {
    for (let k = 0; k < ms * 8; k++, i++) out[i] = hz ? Math.round(8000 * Math.sin((2 * Math.PI * hz * k) / 8000)) : 0;
  }
  return out;
}

export interface PromptLog {
  warn(o: object, msg: string): void;
  info(o: object, msg: string): void;
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    await run(cmd, ['--version'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Makes the missing prompt files of `dir` (all, or `names`); answers how ('espeak-ng', 'tones' or 'present'). */
export async function ensurePrompts(
  dir: string,
  log?: PromptLog,
  names: PromptName[] = Object.keys(PROMPTS) as PromptName[],
): Promise<'espeak-ng' | 'tones' | 'present'> {
  const missing = names.filter((n) => !existsSync(join(dir, `${n}.wav`)));
  if (!missing.length) return 'present';
  await mkdir(dir, { recursive: true });
  const speak = (await onPath('espeak-ng')) && (await onPath('sox'));
  if (!speak) log?.warn({ dir }, 'espeak-ng or sox is not installed: the IVR prompts are tones (install both)');
  for (const n of missing) {
    const file = join(dir, `${n}.wav`);
    const tmp = join(dir, `.${n}.${process.pid}.tmp.wav`);
    const raw = join(dir, `.${n}.${process.pid}.raw.wav`);
    try {
      if (speak) {
        await run('espeak-ng', ['-v', 'en', '-s', '150', '-w', raw, PROMPTS[n]], { timeout: 20000 });
        await run('sox', [raw, '-r', '8000', '-c', '1', '-e', 'u-law', '-t', 'wav', tmp], { timeout: 20000 });
        parseWav(await readFile(tmp)); // what sox wrote must be what we play
      } else {
        await writeFile(tmp, ulawWav(toneSamples(n)));
      }
      await rename(tmp, file);
    } finally {
      await rm(raw, { force: true });
      await rm(tmp, { force: true });
    }
  }
  log?.info({ dir, count: missing.length, by: speak ? 'espeak-ng' : 'tones' }, 'IVR prompts made');
  return speak ? 'espeak-ng' : 'tones';
}

/** The prompts of one data folder, decoded once and kept encoded per codec. */
export class PromptStore {
  private readonly making = new Map<PromptName, Promise<unknown>>();
  private readonly linear = new Map<PromptName, Int16Array>();
  private readonly coded = new Map<string, Buffer>();

  constructor(
    readonly dir: string,
    private readonly log?: PromptLog,
  ) {}

  /** The prompt's G.711 bytes in `codec` (made on first use; a file that cannot be read plays its tones). */
  async get(name: PromptName, codec: G711): Promise<Buffer> {
    const key = `${name}/${codec}`;
    const have = this.coded.get(key);
    if (have) return have;
    // each prompt is made when first needed (the first caller waits for one prompt, not for all of them)
    let making = this.making.get(name);
    if (!making) {
      making = ensurePrompts(this.dir, this.log, [name]).catch((e) =>
        this.log?.warn({ err: String((e as Error)?.message ?? e) }, 'IVR prompt could not be made: tones'),
      );
      this.making.set(name, making);
    }
    await making;
    let pcm = this.linear.get(name);
    if (!pcm) {
      try {
        pcm = parseWav(await readFile(join(this.dir, `${name}.wav`)));
      } catch (e) {
        this.log?.warn({ prompt: name, err: String((e as Error)?.message ?? e) }, 'IVR prompt unreadable: tones');
        pcm = toneSamples(name);
      }
      this.linear.set(name, pcm);
    }
    const out = Buffer.from(encode(codec, pcm));
    this.coded.set(key, out);
    return out;
  }
}
