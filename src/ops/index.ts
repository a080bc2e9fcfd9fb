/** The operations members of the services container (built by src/server.ts). */
import type { BackupService } from './backup/backup.js';
import type { Maintenance } from './maintenance/scheduler.js';
import type { RuntimeProbe } from './runtime.js';
import type { LogAreas } from './logs/areas.js';
import type { ReportHook } from './reports/mail.js';
import type { SettingsService } from './settings/service.js';

export interface OpsServices {
  backups: BackupService;
  maintenance: Maintenance;
  runtime: RuntimeProbe;
  /** The log areas (main, sip, tcp, cdr): files, levels. */
  logs: LogAreas;
  /** The installation's stable id (<datadir>/device.id). */
  deviceId: string;
  /** This process's name in job leases and run records: nodeid, and /worker under `serve --workers N`. */
  node: string;
  /** Hands a written daily report on (the e-mail to dailyreportemail; src/ops/reports/mail.ts). */
  report: ReportHook;
  /** The ini-file and settings-table model: setini/getini, loadinifiles, saveinifiles/savesettings. */
  settings: SettingsService;
}
