/**
 * A background job run on an interval and on demand: runs never overlap (a kick during a run runs once more after
 * it), errors go to the log, and stop() waits for the run in progress.
 */
import type { Logger } from 'pino';

export class JobLoop<R> {
  private timer?: NodeJS.Timeout;
  private running?: Promise<R>;
  private again = false;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly job: () => Promise<R>,
    private readonly log: Logger,
    /** Seconds between runs, read at each (re)schedule; 0: only run() and kick() run the job. */
    private readonly intervalSec: () => number,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const s = this.intervalSec();
    if (this.stopped || s <= 0) return;
    this.timer = setTimeout(() => this.kick(), s * 1000);
    this.timer.unref();
  }

  /** Runs the job soon in the background (when the loop runs on an interval); once more if one is running. */
  kick(): void {
    if (this.stopped || this.intervalSec() <= 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.run().catch((e: unknown) => this.log.error({ err: e, job: this.name }, 'background job failed'));
  }

  /** Runs the job now (after the run in progress, if any) and answers its result. */
  async run(): Promise<R> {
    while (this.running) await this.running.catch(() => undefined);
    const p = this.job();
    this.running = p;
    try {
      return await p;
    } finally {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      } else this.schedule();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }
}

/** Exponential back-off: base · 2^(attempt−1) seconds, at most `maxSec`, in ms. */
export function backoffMs(attempt: number, baseSec: number, maxSec = 6 * 3600): number {
  return Math.min(baseSec * 2 ** Math.max(0, attempt - 1), maxSec) * 1000;
}
