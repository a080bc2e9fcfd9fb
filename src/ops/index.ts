/** The operations members of the services container (built by src/server.ts). */
import type { BackupService } from './backup/backup.js';
import type { Maintenance } from './maintenance/scheduler.js';
import type { RuntimeProbe } from './runtime.js';

export interface OpsServices {
  backups: BackupService;
  maintenance: Maintenance;
  runtime: RuntimeProbe;
  /** The installation's stable id (<datadir>/device.id). */
  deviceId: string;
  /** This process's name in job leases and run records: nodeid, and /worker under `serve --workers N`. */
  node: string;
}
