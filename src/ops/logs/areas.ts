/**
 * The log areas (main, sip, tcp, cdr): one pino logger each, writing JSON lines to `<logdir>/<area>.log`, rotated
 * by size and age with rotating-file-stream (classical numbering: `<area>.log.1` is the newest rotated file).
 * Warnings and above of every area also reach the console: pino-pretty on a terminal, JSON otherwise.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { pino, type Logger, type LevelWithSilent, type StreamEntry } from 'pino';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import pretty from 'pino-pretty';

export const LOG_AREAS = ['main', 'sip', 'tcp', 'cdr'] as const;
export type LogArea = (typeof LOG_AREAS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function isLogArea(s: string): s is LogArea {
  return (LOG_AREAS as readonly string[]).includes(s);
}
export function isLogLevel(s: string): s is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export interface LogSettings {
  /** Folder of the files (created). */
  dir: string;
  /** The default level of every area. */
  level: LevelWithSilent;
  /** Per-area levels, `sip=debug,tcp=warn` (overrides `level`). */
  levels?: string;
  /** Rotate once a file reaches this many megabytes. */
  maxSizeMb: number;
  /** Rotated files kept per area. */
  maxFiles: number;
  /** Rotate also at this interval (rotating-file-stream syntax: `1d`, `12h`), '' for size only. */
  interval: string;
  /** Where warnings and above also go (standard error by default); null: nowhere. */
  console?: NodeJS.WritableStream | null;
  /** A logger given by the embedder (tests): the areas are its children and no file is written. */
  root?: Logger;
}

const REDACT = ['password', 'authpwd', 'authmd5', 'u_password', 'apiv2key', 'key', 'pwd'];
const redact = { paths: [...REDACT, ...REDACT.map((p) => `*.${p}`)], censor: '***' };

/** Parses `sip=debug,tcp=warn` into per-area levels; throws on an unknown area or level. */
export function parseLevels(s: string): Partial<Record<LogArea, LevelWithSilent>> {
  const out: Partial<Record<LogArea, LevelWithSilent>> = {};
  for (const part of s.split(',').map((p) => p.trim())) {
    if (!part) continue;
    const [area, level] = part.split('=').map((p) => p.trim());
    if (!area || !isLogArea(area)) throw new Error(`loglevels: unknown log area "${area}" (${LOG_AREAS.join('/')})`);
    if (!level || !isLogLevel(level)) throw new Error(`loglevels: unknown level "${level}" for ${area}`);
    out[area] = level;
  }
  return out;
}

export class LogAreas {
  readonly dir: string;
  private readonly files = new Map<LogArea, RotatingFileStream>();
  private readonly loggers = new Map<LogArea, Logger>();
  private readonly batches: Batched[] = [];
  private closed?: Promise<void>;

  constructor(s: LogSettings) {
    this.dir = s.dir;
    if (!s.root) mkdirSync(s.dir, { recursive: true });
    const levels = parseLevels(s.levels ?? '');
    if (s.root) {
      for (const area of LOG_AREAS) this.loggers.set(area, area === 'main' ? s.root : s.root.child({ area }));
      return;
    }
    const out = s.console === undefined ? process.stderr : s.console;
    const tty = out === process.stderr && process.stderr.isTTY;
    const console = out && (tty ? pretty({ destination: 2, sync: true }) : out);
    for (const area of LOG_AREAS) {
      const file = createStream(
        (i: number | Date | null) => (typeof i === 'number' ? `${area}.log.${i}` : `${area}.log`),
        {
          path: s.dir,
          size: `${s.maxSizeMb}M`,
          rotate: s.maxFiles,
          ...(s.interval ? { interval: s.interval } : {}),
        },
      );
      file.on('error', (e) => process.stderr.write(`[logs] ${area}.log: ${e.message}\n`));
      this.files.set(area, file);
      const batch = new Batched(file);
      this.batches.push(batch);
      const streams: StreamEntry[] = [{ stream: batch, level: 'trace' }];
      if (console) streams.push({ stream: console, level: 'warn' });
      const level = levels[area] ?? s.level;
      const base = area === 'main' ? {} : { area };
      // the other areas log fixed fields built by their call sites (never a request's parameters): redaction,
      // a walk over every field of every line, is left to main, where objects of any shape are logged
      const opts = area === 'main' ? { level, redact, base } : { level, base };
      this.loggers.set(area, pino(opts, pino.multistream(streams)));
    }
  }

  get(area: LogArea): Logger {
    return this.loggers.get(area)!;
  }

  /** The file of an area (the current one; rotated ones are `<file>.1`, `<file>.2`, …). */
  file(area: LogArea): string {
    return join(this.dir, `${area}.log`);
  }

  level(area: LogArea): string {
    return this.get(area).level;
  }

  setLevel(area: LogArea, level: LevelWithSilent): void {
    this.get(area).level = level;
  }

  /** Ends every file after its buffered lines are written. */
  close(): Promise<void> {
    for (const b of this.batches) b.flush();
    this.closed ??= Promise.all(
      [...this.files.values()].map(async (f) => {
        f.end();
        await once(f, 'finish').catch(() => undefined);
      }),
    ).then(() => undefined);
    return this.closed;
  }
}

/**
 * Whole lines gathered and handed to the rotating file as one chunk per event-loop turn (or per 64 KB): the file
 * stream then makes one write, not one per line. A chunk holds whole lines only, so a rotation never splits one.
 */
class Batched {
  private parts: string[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(private readonly file: RotatingFileStream) {}

  write(line: string): boolean {
    this.parts.push(line);
    this.bytes += line.length;
    if (this.bytes >= 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (!this.parts.length || this.file.writableEnded) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.bytes = 0;
    this.file.write(chunk);
  }
}
