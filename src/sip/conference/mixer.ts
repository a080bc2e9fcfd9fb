/**
 * The main thread's handle on the mixer worker (./mixer-worker.ts): started on the first join, each call a message
 * answered by the worker (join binds the participant's sockets there; leave, stats). Signalling waits on nothing
 * but these answers.
 */
import { Worker } from 'node:worker_threads';
import type { FromWorker, JoinMsg, MixerStats, MonitorMsg, ToWorker } from './protocol.js';

type Pending = { resolve: (m: FromWorker) => void };
type Out<T> = T extends unknown ? Omit<T, 'rid'> : never;

export class ConferenceMixer {
  private worker?: Worker;
  private rid = 0;
  private readonly pending = new Map<number, Pending>();

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./mixer-worker.js', import.meta.url));
    w.on('message', (m: FromWorker) => {
      const p = this.pending.get(m.rid);
      this.pending.delete(m.rid);
      p?.resolve(m);
    });
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const [rid, p] of this.pending) p.resolve({ t: 'error', rid, error: why });
      this.pending.clear();
    };
    w.on('error', (e) => fail(`conference mixer failed: ${e.message}`));
    w.on('exit', () => fail('conference mixer stopped'));
    this.worker = w;
    return w;
  }

  private ask(m: Out<ToWorker>): Promise<FromWorker> {
    const rid = ++this.rid;
    const w = this.start();
    return new Promise((resolve) => {
      this.pending.set(rid, { resolve });
      w.postMessage({ ...m, rid });
    });
  }

  /** Binds the participant's sockets in the worker and adds it to its room; rejects when the bind fails. */
  async join(m: Omit<JoinMsg, 't' | 'rid'>): Promise<void> {
    const r = await this.ask({ t: 'join', ...m });
    if (r.t === 'error') throw new Error(r.error);
  }

  /** A listener of a call (src/sip/monitor): binds its sockets in the worker; rejects when the bind fails. */
  async monitor(m: Omit<MonitorMsg, 't' | 'rid'>): Promise<void> {
    const r = await this.ask({ t: 'monitor', ...m });
    if (r.t === 'error') throw new Error(r.error);
  }

  /** One RTP packet of a listened call's side, copied and handed to the worker (nothing when it is not running). */
  feed(id: string, side: 'a' | 'b', packet: Buffer): void {
    if (!this.worker) return;
    const copy = new Uint8Array(packet); // its own ArrayBuffer, moved to the worker without a second copy
    this.worker.postMessage({ t: 'feed', id, side, packet: copy } satisfies ToWorker, [copy.buffer]);
  }

  async leave(id: string): Promise<void> {
    if (this.worker) await this.ask({ t: 'leave', id });
  }

  async stats(): Promise<MixerStats> {
    if (!this.worker) return { participants: [], ticks: 0, underruns: 0, maxTickMs: 0 };
    const r = await this.ask({ t: 'stats' });
    return r.t === 'stats' ? r.stats : { participants: [], ticks: 0, underruns: 0, maxTickMs: 0 };
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    await Promise.race([this.ask({ t: 'close' }), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.worker = undefined;
    await w.terminate();
  }
}
