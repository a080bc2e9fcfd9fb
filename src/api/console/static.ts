/**
 * The console's built files (dist/console, made by scripts/ensure.mjs with Vite). Only the files found there at
 * start are served, by exact path: no path from a request ever reaches the file system.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from './web.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
};

/** dist/console beside dist/src (this file is dist/src/api/console/static.js once compiled). */
export const BUILT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'console');

interface Asset {
  body: Buffer;
  type: string;
  immutable: boolean;
}

export class StaticFiles {
  private readonly files = new Map<string, Asset>();

  constructor(readonly dir: string = BUILT_DIR) {
    if (existsSync(dir)) this.walk(dir);
  }

  get built(): boolean {
    return this.files.has('/index.html');
  }

  private walk(d: string): void {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) this.walk(p);
      else {
        const rel = '/' + relative(this.dir, p).split('\\').join('/');
        const type = TYPES[extname(name).toLowerCase()];
        // Vite names built assets by their hash: they never change under one name
        if (type) this.files.set(rel, { body: readFileSync(p), type, immutable: rel.startsWith('/assets/') });
      }
    }
  }

  /** Serves `path` (below /console); false when there is no such file. Unknown page paths get index.html. */
  serve(path: string, res: ServerResponse, head: boolean): boolean {
    const a = this.files.get(path === '/' || path === '' ? '/index.html' : path);
    if (!a) return false;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': a.type,
      'content-length': String(a.body.length),
      'cache-control': a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(head ? undefined : a.body);
    return true;
  }
}
