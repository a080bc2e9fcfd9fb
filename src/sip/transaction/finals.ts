// Completed non-INVITE server transactions on UDP (RFC 3261 §17.2.2): key → the final response, sent again to a
// retransmitted request until Timer J. Every entry has the same delay, so the queue's order is expiry order. The
// finals are copied one after another into chunks of CHUNK bytes: no Buffer object (nor an 8 KB pool slab pinned)
// per final, and a chunk goes as a whole once the last final in it has expired. At 4,000 finals a second Timer J
// holds some 128,000 of them.

/** Larger than any datagram (65,535 bytes), so a final always fits in a fresh chunk. */
const CHUNK = 256 * 1024;

export class LingeringFinals {
  /** key → sequence number of its newest entry */
  private readonly byKey = new Map<string, number>();
  /** The queue, oldest first: key, absolute byte position, length, due time; `head` is the oldest live entry. */
  private keys: string[] = [];
  private pos: number[] = [];
  private lens: number[] = [];
  private due: number[] = [];
  private head = 0;
  /** sequence number of keys[0] */
  private seqBase = 0;
  /** chunks[0] holds positions from firstChunk × CHUNK */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  /** where the next final is written (absolute byte position) */
  private end = 0;

  get size(): number {
    return this.byKey.size;
  }

  /** Keeps a copy of `buf` under `key` until `dueAt` (later entries never come due earlier). */
  add(key: string, buf: Buffer, dueAt: number): void {
    const len = buf.length;
    // a final over 65,535 bytes cannot be a datagram (the send fails): nothing to answer retransmissions with
    if (len > CHUNK) return;
    let idx = Math.floor(this.end / CHUNK);
    let off = this.end - idx * CHUNK;
    if (off + len > CHUNK) {
      idx++;
      off = 0;
    }
    while (this.firstChunk + this.chunks.length <= idx) this.chunks.push(Buffer.allocUnsafeSlow(CHUNK));
    buf.copy(this.chunks[idx - this.firstChunk]!, off);
    const at = idx * CHUNK + off;
    this.end = at + len;
    this.byKey.set(key, this.seqBase + this.keys.length);
    this.keys.push(key);
    this.pos.push(at);
    this.lens.push(len);
    this.due.push(dueAt);
  }

  /** The final kept under `key` (a view into its chunk: send it, do not keep it). */
  get(key: string): Buffer | undefined {
    const seq = this.byKey.get(key);
    if (seq === undefined) return undefined;
    const i = seq - this.seqBase;
    const at = this.pos[i]!;
    const idx = Math.floor(at / CHUNK);
    const off = at - idx * CHUNK;
    return this.chunks[idx - this.firstChunk]!.subarray(off, off + this.lens[i]!);
  }

  /** When the oldest entry comes due (undefined when empty). */
  nextDue(): number | undefined {
    return this.head < this.keys.length ? this.due[this.head] : undefined;
  }

  /** Drops the entries due at `now`, and the chunks no live entry is in. */
  drain(now: number): void {
    let h = this.head;
    const n = this.keys.length;
    while (h < n && this.due[h]! <= now) {
      const k = this.keys[h]!;
      if (this.byKey.get(k) === this.seqBase + h) this.byKey.delete(k);
      h++;
    }
    if (h === n) {
      this.clear();
      return;
    }
    if (h > 4096 && h > n / 2) {
      this.keys = this.keys.slice(h);
      this.pos = this.pos.slice(h);
      this.lens = this.lens.slice(h);
      this.due = this.due.slice(h);
      this.seqBase += h;
      h = 0;
    }
    this.head = h;
    const oldest = Math.floor(this.pos[h]! / CHUNK);
    while (this.firstChunk < oldest) {
      this.chunks.shift();
      this.firstChunk++;
    }
  }

  clear(): void {
    this.byKey.clear();
    this.keys = [];
    this.pos = [];
    this.lens = [];
    this.due = [];
    this.head = 0;
    this.seqBase = 0;
    this.chunks = [];
    this.firstChunk = 0;
    this.end = 0;
  }
}
