/**
 * Longest-prefix index of one tariff plan: a decimal digit trie held in typed arrays (10 child slots per node),
 * so a look-up is at most one array read per digit of the number, with no allocation. Each node that ends a
 * prefix points to the rates of that prefix (several when they have different validity periods); a look-up
 * returns the rate of the longest prefix that is valid at the given time (an expired or not-yet-valid rate
 * lets a shorter prefix apply).
 */
import { isValidAt, type Rate } from './rate.js';

export class PrefixIndex {
  private child: Int32Array;
  /** index into `lists` + 1 (0: no rates end here) */
  private slot: Int32Array;
  private nodes = 1;
  private lists: Rate[][] = [];
  private count = 0;

  constructor(expected = 1024) {
    const n = Math.max(16, expected * 2);
    this.child = new Int32Array(n * 10);
    this.slot = new Int32Array(n);
  }

  get size(): number {
    return this.count;
  }

  /** All rates, in insertion order of their prefixes. */
  *rates(): IterableIterator<Rate> {
    for (const l of this.lists) yield* l;
  }

  /** Prefixes of the index (one per distinct prefix). */
  prefixes(): string[] {
    return this.lists.map((l) => l[0]!.prefix);
  }

  add(r: Rate): void {
    if (!/^\d{1,32}$/.test(r.prefix)) throw new RangeError(`prefix "${r.prefix}" is not 1-32 digits`);
    let node = 0;
    for (let i = 0; i < r.prefix.length; i++) {
      const d = r.prefix.charCodeAt(i) - 48;
      let next = this.child[node * 10 + d]!;
      if (next === 0) {
        next = this.newNode();
        this.child[node * 10 + d] = next;
      }
      node = next;
    }
    let s = this.slot[node]!;
    if (s === 0) {
      this.lists.push([]);
      s = this.lists.length;
      this.slot[node] = s;
    }
    const list = this.lists[s - 1]!;
    list.push(r);
    // newest validity first, so the current rate is usually found first
    list.sort((a, b) => (b.validFrom ?? -Infinity) - (a.validFrom ?? -Infinity));
    this.count++;
  }

  private newNode(): number {
    if (this.nodes >= this.slot.length) {
      const n = this.slot.length * 2;
      const c = new Int32Array(n * 10);
      c.set(this.child);
      this.child = c;
      const s = new Int32Array(n);
      s.set(this.slot);
      this.slot = s;
    }
    return this.nodes++;
  }

  /** The rate of the longest prefix of `digits` valid at `at` (epoch ms), or undefined. */
  lookup(digits: string, at: number): Rate | undefined {
    const child = this.child;
    const slot = this.slot;
    let node = 0;
    let found: Rate | undefined;
    for (let i = 0; i < digits.length; i++) {
      const d = digits.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      node = child[node * 10 + d]!;
      if (node === 0) break;
      const s = slot[node]!;
      if (s !== 0) {
        const list = this.lists[s - 1]!;
        for (let k = 0; k < list.length; k++) {
          const r = list[k]!;
          if (isValidAt(r, at)) {
            found = r;
            break;
          }
        }
      }
    }
    return found;
  }
}
