/**
 * The document's file commands, base64 in and out: getfile/putfile/file under the server directory (the data dir,
 * without its secrets, database, logs' own rotation parts and backups) and pgetfile/pputfile under the web file
 * storage (option webfiles). The confinement is src/domain/files/confine.ts.
 */
import { join, resolve } from 'node:path';
import { ok } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import { ConfinedFolder, decodeBase64 } from '../../domain/files/confine.js';

/** What the server directory never serves or takes: the key, the config, the database, TLS keys, backups. */
const REFUSED = ['server.key', 'voxswitch.conf', 'voxswitch.db*', 'tls', 'backups', 'device.id'];

function serverDir(ctx: CommandContext): ConfinedFolder {
  const o = ctx.services.config.options;
  return new ConfinedFolder(ctx.services.config.dataDir, { maxBytes: o.filemaxsize, refused: REFUSED });
}

function webDir(ctx: CommandContext): ConfinedFolder {
  const o = ctx.services.config.options;
  const root = o.webfiles ? resolve(ctx.services.config.dataDir, o.webfiles) : join(ctx.services.config.dataDir, 'www');
  return new ConfinedFolder(root, { maxBytes: o.filemaxsize });
}

function getter(name: string, description: string, folder: (ctx: CommandContext) => ConfinedFolder): CommandDef {
  return {
    name,
    params: ['filename'],
    level: 6,
    description,
    run: (ctx, p) => {
      const data = folder(ctx).read(p.filename ?? '');
      return ok(data.toString('base64'), { fields: { filename: p.filename ?? '', bytes: data.length } });
    },
  };
}

function putter(name: string, description: string, folder: (ctx: CommandContext) => ConfinedFolder): CommandDef {
  return {
    name,
    params: ['filename', 'filedata'],
    level: 6,
    description,
    run: (ctx, p) => {
      const data = decodeBase64(p.filedata ?? '');
      const w = folder(ctx).write(p.filename ?? '', data);
      ctx.services.log.info({ command: name, filename: p.filename, bytes: w.bytes }, 'file written');
      return ok(`${p.filename} saved (${w.bytes} bytes)`, { fields: { filename: p.filename ?? '', bytes: w.bytes } });
    },
  };
}

export const fileCommands: CommandDef[] = [
  getter('file', 'send the requested file (from under the server directory, base64)', serverDir),
  getter('getfile', 'load a file from under the server directory (base64)', serverDir),
  putter('putfile', 'save a file under the server directory (filedata base64; written atomically)', serverDir),
  getter('pgetfile', 'load a file from the web file storage (base64)', webDir),
  putter('pputfile', 'save a file under the web file storage (filedata base64; written atomically)', webDir),
];
