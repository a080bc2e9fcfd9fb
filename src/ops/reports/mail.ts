/**
 * The daily report by e-mail: to the addresses of `dailyreportemail` through the e-mail queue (the text report as
 * the body, the HTML beside it in <datadir>/reports), when e-mail is configured; otherwise it is only kept on disk.
 */
import type { Logger } from 'pino';
import { reportText, type DailyReport } from './daily.js';

export interface ReportMail {
  readonly configured: boolean;
  enqueue(m: { userId: number; from: string; to: string; subject: string; body: string; ref?: string }): Promise<{
    id: number;
  }>;
}

export type ReportHook = (r: DailyReport, files: { text: string; html: string }) => void;

/** A hook that queues the report for the configured recipients (nothing when none are set or e-mail is off). */
export function mailDailyReport(
  mail: ReportMail,
  options: () => { dailyreportemail: readonly string[]; smtpfrom: string },
  log: Pick<Logger, 'info' | 'warn'>,
): ReportHook {
  return (r) => {
    const o = options();
    const to = o.dailyreportemail.join(', ');
    if (!to) return;
    if (!mail.configured) {
      log.warn({ day: r.day }, 'daily report not e-mailed: e-mail is not configured (smtphost)');
      return;
    }
    const subject = `voxswitch daily report ${r.day}: ${r.calls} calls, ${r.minutes} minutes, ASR ${r.asr} %`;
    mail
      .enqueue({ userId: 0, from: o.smtpfrom, to, subject, body: reportText(r), ref: `report:${r.day}` })
      .then((m) => log.info({ day: r.day, mail: m.id, to }, 'daily report e-mailed'))
      .catch((e: unknown) =>
        log.warn({ err: String((e as Error)?.message ?? e), day: r.day }, 'daily report not e-mailed'),
      );
  };
}
