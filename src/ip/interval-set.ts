/**
 * A set of addresses kept as sorted, disjoint, non-adjacent [start, end] intervals.
 * Memory grows with the number of gaps, never with the pool size: a /8 or a /64 costs nothing
 * up front, and a million sequential allocations are one interval. Lookups are O(log n).
 */
export type Interval = readonly [bigint, bigint];

export class IntervalSet {
  private starts: bigint[] = [];
  private ends: bigint[] = [];

  static from(intervals: readonly Interval[]): IntervalSet {
    const s = new IntervalSet();
    for (const [a, b] of intervals) s.addRange(a, b);
    return s;
  }

  get intervalCount(): number {
    return this.starts.length;
  }

  /** Number of addresses in the set. */
  get size(): bigint {
    let n = 0n;
    for (let i = 0; i < this.starts.length; i++) n += (this.ends[i] as bigint) - (this.starts[i] as bigint) + 1n;
    return n;
  }

  intervals(): Interval[] {
    return this.starts.map((s, i) => [s, this.ends[i] as bigint] as const);
  }

  /** Index of the last interval whose start is <= v, or -1. */
  private floor(v: bigint): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.starts[mid] as bigint) <= v) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  has(v: bigint): boolean {
    const i = this.floor(v);
    return i >= 0 && v <= (this.ends[i] as bigint);
  }

  add(v: bigint): void {
    this.addRange(v, v);
  }

  addRange(a: bigint, b: bigint): void {
    if (b < a) return;
    let i = this.floor(a);
    // Merge with the interval before when it touches or overlaps.
    if (i >= 0 && (this.ends[i] as bigint) + 1n >= a) {
      a = this.starts[i] as bigint;
      if ((this.ends[i] as bigint) > b) b = this.ends[i] as bigint;
    } else i += 1;
    let j = i;
    while (j < this.starts.length && (this.starts[j] as bigint) <= b + 1n) {
      if ((this.ends[j] as bigint) > b) b = this.ends[j] as bigint;
      j++;
    }
    this.starts.splice(i, j - i, a);
    this.ends.splice(i, j - i, b);
  }

  delete(v: bigint): void {
    const i = this.floor(v);
    if (i < 0) return;
    const s = this.starts[i] as bigint;
    const e = this.ends[i] as bigint;
    if (v > e) return;
    if (s === e) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (v === s) this.starts[i] = s + 1n;
    else if (v === e) this.ends[i] = e - 1n;
    else {
      this.ends[i] = v - 1n;
      this.starts.splice(i + 1, 0, v + 1n);
      this.ends.splice(i + 1, 0, e);
    }
  }

  /** The smallest value in [from, to] not in the set, or undefined. */
  firstFree(from: bigint, to: bigint): bigint | undefined {
    if (from > to) return undefined;
    const i = this.floor(from);
    let candidate = from;
    if (i >= 0 && (this.ends[i] as bigint) >= from) candidate = (this.ends[i] as bigint) + 1n;
    // Intervals are non-adjacent, so the value after an interval's end is free.
    return candidate <= to ? candidate : undefined;
  }

  /** Number of values of the set inside [from, to]. */
  countIn(from: bigint, to: bigint): bigint {
    let n = 0n;
    for (let k = Math.max(0, this.floor(from)); k < this.starts.length; k++) {
      const s = this.starts[k] as bigint;
      const e = this.ends[k] as bigint;
      if (s > to) break;
      const lo = s > from ? s : from;
      const hi = e < to ? e : to;
      if (hi >= lo) n += hi - lo + 1n;
    }
    return n;
  }
}
