/** The last lines of a log file, read backwards in chunks from its end (never the whole file). */
import { open } from 'node:fs/promises';

export const MAX_TAIL_LINES = 10_000;
const CHUNK = 64 * 1024;
/** At most this many bytes are read whatever the line count (a file of huge lines stays cheap). */
const MAX_BYTES = 16 * 1024 * 1024;

export async function tailLines(file: string, lines: number): Promise<string[]> {
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!fh) return [];
  try {
    const { size } = await fh.stat();
    const parts: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    while (pos > 0 && newlines <= lines && size - pos < MAX_BYTES) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      for (const b of buf) if (b === 10) newlines++;
      parts.unshift(buf);
    }
    const text = Buffer.concat(parts).toString('utf8');
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    // a partial first line (the read started mid-line) is dropped
    if (pos > 0) all.shift();
    return all.slice(-lines);
  } finally {
    await fh.close();
  }
}
