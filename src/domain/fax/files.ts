/**
 * Files a user names (sendfax's filename) come only from a confined folder, `<datadir>/files/<area>/`: no NUL,
 * no absolute path, no `..`, and the real path (symlinks resolved) must stay inside the folder; a regular file no
 * larger than the limit.
 */
import { open, realpath } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve, sep } from 'node:path';
import { DomainError } from '../errors.js';

export interface ConfinedFile {
  /** the name relative to the folder, as given */
  name: string;
  content: Buffer;
}

export function confinedFolder(dataDir: string, area: string): string {
  return join(resolve(dataDir), 'files', area);
}

/** The name's own problems (before touching the file system); undefined when it is acceptable. */
export function nameProblem(name: string): string | undefined {
  if (!name) return 'missing';
  if (name.includes('\0')) return 'NUL characters are not allowed';
  if (name.length > 255) return 'longer than 255 characters';
  if (isAbsolute(name) || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) return 'absolute paths are not allowed';
  if (name.split(/[/\\]/).some((p) => p === '..')) return '".." is not allowed';
  return undefined;
}

export async function readConfined(
  dataDir: string,
  area: string,
  name: string,
  maxBytes: number,
  field = 'filename',
): Promise<ConfinedFile> {
  const bad = nameProblem(name);
  if (bad) throw new DomainError(`${field}: ${bad} (a file name inside ${area} storage)`);
  const base = confinedFolder(dataDir, area);
  let realBase: string;
  let real: string;
  try {
    realBase = await realpath(base);
  } catch {
    throw new DomainError(`${field}: the ${area} folder ${base} does not exist (put the files there)`, 'config');
  }
  try {
    real = await realpath(resolve(base, name));
  } catch {
    throw new DomainError(`${field}: no such file "${basename(name)}" in the ${area} folder`, 'notfound');
  }
  if (!real.startsWith(realBase + sep))
    throw new DomainError(`${field}: the file leads outside the ${area} folder (refused)`, 'denied');
  const fh = await open(real, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new DomainError(`${field}: not a regular file`);
    if (st.size > maxBytes) throw new DomainError(`${field}: ${st.size} bytes, more than the limit of ${maxBytes}`);
    if (st.size === 0) throw new DomainError(`${field}: the file is empty`);
    const content = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(content, 0, st.size, 0);
    return { name, content: content.subarray(0, bytesRead) };
  } finally {
    await fh.close();
  }
}
