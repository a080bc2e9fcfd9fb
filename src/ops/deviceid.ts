/**
 * The installation's stable id: a random UUID written once to `<datadir>/device.id` (kept by backups and restores,
 * so a restored installation keeps its id). `deviceid` answers it with this process's node id.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEVICE_FILE = 'device.id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Reads the data dir's device id, writing a new one when there is none (a damaged file is an error, not replaced). */
export function deviceId(dataDir: string): string {
  const file = join(dataDir, DEVICE_FILE);
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomUUID() + '\n', { mode: 0o644, flag: 'wx' });
    } catch (e) {
      // another process of the same data dir wrote it first
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const id = readFileSync(file, 'utf8').trim();
  if (!UUID.test(id)) throw new Error(`${file}: expected a UUID, found something else (restore it from a backup)`);
  return id;
}
