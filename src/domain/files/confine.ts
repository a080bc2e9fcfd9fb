/**
 * Files confined to one folder (the file commands): a name is a relative path of plain segments; nothing reaches
 * outside the folder by `..`, an absolute path, a drive or UNC prefix, a NUL or control character, or a symlink
 * (the real path of the nearest existing ancestor must be inside the folder's real path, and the file itself must
 * not be a symlink). Writes are atomic: a temporary file in the same folder, fsync, then rename.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync } from 'node:fs';
import { rmSync, writeSync, existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DomainError } from '../errors.js';

export interface ConfinedOptions {
  /** Largest file read or written, in bytes. */
  maxBytes: number;
  /** First path segments never served nor written (lower case), e.g. the key, the config, the database. */
  refused?: readonly string[];
}

const bad = (msg: string) => new DomainError(msg, 'input');

export class ConfinedFolder {
  constructor(
    readonly root: string,
    private readonly o: ConfinedOptions,
  ) {}

  /** The checked path of `name` inside the folder (the file need not exist). */
  resolve(name: string): string {
    if (typeof name !== 'string' || !name.trim()) throw bad('filename: name a file');
    if (name.length > 1024) throw bad('filename: longer than 1024 characters');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(name)) throw bad('filename: control characters (NUL …) are not allowed');
    if (name.includes('\\')) throw bad('filename: use / between folders (a backslash is not allowed)');
    if (name.startsWith('/') || /^[a-z]:/i.test(name)) throw bad('filename: an absolute path is not allowed');
    const parts = name.split('/');
    for (const p of parts) {
      if (p === '..' || p === '.') throw bad('filename: "." and ".." are not allowed');
      if (p === '') throw bad('filename: an empty folder name (//, or a trailing /) is not allowed');
      if (p.length > 255) throw bad('filename: a name longer than 255 characters');
    }
    const first = parts[0]!.toLowerCase();
    if ((this.o.refused ?? []).some((r) => first === r || (r.endsWith('*') && first.startsWith(r.slice(0, -1)))))
      throw new DomainError(`${parts[0]} is not served by the file commands (secrets, database and backups)`, 'denied');
    const full = join(this.root, ...parts);
    this.assertInside(full);
    return full;
  }

  /** The nearest existing ancestor's real path is inside the root; the file itself is not a symlink. */
  private assertInside(full: string): void {
    mkdirSync(this.root, { recursive: true, mode: 0o750 });
    const rootReal = realpathSync(this.root);
    let probe = full;
    while (!existsSync(probe) && probe !== dirname(probe)) probe = dirname(probe);
    if (existsSync(full) && lstatSync(full).isSymbolicLink())
      throw new DomainError('filename: a symbolic link is not followed', 'denied');
    const real = realpathSync(probe);
    if (real !== rootReal && !real.startsWith(rootReal + sep))
      throw new DomainError('filename: the path leads outside the folder', 'denied');
  }

  read(name: string): Buffer {
    const full = this.resolve(name);
    let st;
    try {
      st = lstatSync(full);
    } catch {
      throw new DomainError(`no file ${name}`, 'notfound');
    }
    if (!st.isFile()) throw new DomainError(`${name} is not a file`, 'input');
    if (st.size > this.o.maxBytes)
      throw new DomainError(`${name} is ${st.size} bytes: larger than filemaxsize (${this.o.maxBytes})`, 'input');
    return readFileSync(full);
  }

  /** Writes `data` atomically (a crash leaves the old file or the new one, never half of it). */
  write(name: string, data: Buffer): { file: string; bytes: number } {
    if (data.length > this.o.maxBytes)
      throw bad(`filedata is ${data.length} bytes: larger than filemaxsize (${this.o.maxBytes})`);
    const full = this.resolve(name);
    if (existsSync(full) && !lstatSync(full).isFile()) throw bad(`${name} is not a file`);
    mkdirSync(dirname(full), { recursive: true, mode: 0o750 });
    this.assertInside(dirname(full));
    const tmp = join(dirname(full), `.${randomBytes(6).toString('hex')}.part`);
    try {
      const fd = openSync(tmp, 'wx', 0o640);
      try {
        writeSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, full);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { file: full, bytes: data.length };
  }
}

/** Strict base64 (the document's filedata): the characters, padding and length checked, not silently skipped. */
export function decodeBase64(text: string): Buffer {
  const t = text.replace(/[\r\n ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 === 1)
    throw bad('filedata: not base64 (A-Z a-z 0-9 + / and = padding)');
  return Buffer.from(t, 'base64');
}
