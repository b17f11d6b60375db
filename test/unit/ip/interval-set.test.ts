import { describe, expect, it } from 'vitest';
import { IntervalSet, type Interval } from '../../../src/ip/interval-set.js';
import { prng } from '../support.js';

const iv = (s: IntervalSet): [number, number][] => s.intervals().map(([a, b]) => [Number(a), Number(b)]);

/** Sorted, disjoint and non-adjacent: the invariant every operation must keep. */
function checkInvariant(s: IntervalSet): void {
  const list = s.intervals();
  for (let i = 0; i < list.length; i++) {
    const [a, b] = list[i] as Interval;
    expect(a <= b, `interval ${i} [${a}, ${b}] is reversed`).toBe(true);
    if (i > 0) {
      const prevEnd = (list[i - 1] as Interval)[1];
      expect(a > prevEnd + 1n, `intervals ${i - 1} and ${i} touch or overlap`).toBe(true);
    }
  }
}

describe('IntervalSet basics', () => {
  it('starts empty', () => {
    const s = new IntervalSet();
    expect(s.intervalCount).toBe(0);
    expect(s.size).toBe(0n);
    expect(s.has(0n)).toBe(false);
    expect(s.firstFree(0n, 10n)).toBe(0n);
    expect(s.countIn(0n, 10n)).toBe(0n);
  });

  it('add merges neighbours into one interval', () => {
    const s = new IntervalSet();
    s.add(5n);
    s.add(7n);
    expect(iv(s)).toEqual([
      [5, 5],
      [7, 7],
    ]);
    s.add(6n); // bridges the gap
    expect(iv(s)).toEqual([[5, 7]]);
    s.add(4n);
    s.add(8n);
    expect(iv(s)).toEqual([[4, 8]]);
    s.add(6n); // already there
    expect(iv(s)).toEqual([[4, 8]]);
    expect(s.size).toBe(5n);
  });

  it('addRange swallows and joins several intervals', () => {
    const s = IntervalSet.from([
      [1n, 2n],
      [5n, 6n],
      [10n, 12n],
      [20n, 20n],
    ]);
    expect(s.intervalCount).toBe(4);
    s.addRange(3n, 10n);
    expect(iv(s)).toEqual([
      [1, 12],
      [20, 20],
    ]);
    s.addRange(14n, 18n);
    expect(iv(s)).toEqual([
      [1, 12],
      [14, 18],
      [20, 20],
    ]);
    s.addRange(13n, 19n);
    expect(iv(s)).toEqual([[1, 20]]);
    s.addRange(30n, 29n); // empty range: nothing
    expect(iv(s)).toEqual([[1, 20]]);
    s.addRange(0n, 100n);
    expect(iv(s)).toEqual([[0, 100]]);
  });

  it('from() accepts unsorted and overlapping input', () => {
    const s = IntervalSet.from([
      [10n, 12n],
      [1n, 3n],
      [2n, 5n],
      [6n, 6n],
    ]);
    expect(iv(s)).toEqual([
      [1, 6],
      [10, 12],
    ]);
  });

  it('delete trims ends and splits the middle', () => {
    const s = IntervalSet.from([[1n, 10n]]);
    s.delete(1n);
    expect(iv(s)).toEqual([[2, 10]]);
    s.delete(10n);
    expect(iv(s)).toEqual([[2, 9]]);
    s.delete(5n);
    expect(iv(s)).toEqual([
      [2, 4],
      [6, 9],
    ]);
    s.delete(5n); // absent: nothing
    s.delete(100n);
    s.delete(0n);
    expect(iv(s)).toEqual([
      [2, 4],
      [6, 9],
    ]);
    s.add(20n);
    s.delete(20n); // single-value interval disappears
    expect(iv(s)).toEqual([
      [2, 4],
      [6, 9],
    ]);
    expect(s.size).toBe(7n);
  });

  it('firstFree', () => {
    const s = IntervalSet.from([
      [0n, 4n],
      [6n, 9n],
      [12n, 12n],
    ]);
    expect(s.firstFree(0n, 100n)).toBe(5n);
    expect(s.firstFree(5n, 100n)).toBe(5n);
    expect(s.firstFree(6n, 100n)).toBe(10n);
    expect(s.firstFree(12n, 100n)).toBe(13n);
    expect(s.firstFree(10n, 10n)).toBe(10n);
    expect(s.firstFree(6n, 9n)).toBeUndefined(); // all taken
    expect(s.firstFree(0n, 4n)).toBeUndefined();
    expect(s.firstFree(9n, 3n)).toBeUndefined(); // empty range
    expect(s.firstFree(100n, 200n)).toBe(100n);
  });

  it('countIn', () => {
    const s = IntervalSet.from([
      [0n, 4n],
      [6n, 9n],
      [12n, 12n],
    ]);
    expect(s.countIn(0n, 100n)).toBe(10n);
    expect(s.countIn(3n, 7n)).toBe(4n); // 3,4,6,7
    expect(s.countIn(5n, 5n)).toBe(0n);
    expect(s.countIn(12n, 12n)).toBe(1n);
    expect(s.countIn(13n, 100n)).toBe(0n);
    expect(s.countIn(7n, 3n)).toBe(0n);
  });

  it('handles 128-bit values', () => {
    const top = (1n << 128n) - 1n;
    const s = new IntervalSet();
    s.addRange(top - 10n, top);
    expect(s.has(top)).toBe(true);
    expect(s.firstFree(top - 10n, top)).toBeUndefined();
    expect(s.firstFree(top - 20n, top)).toBe(top - 20n);
    s.delete(top);
    expect(s.firstFree(top - 10n, top)).toBe(top);
    expect(s.countIn(0n, top)).toBe(10n);
  });
});

describe('IntervalSet against a Set<bigint> reference', () => {
  it('agrees on thousands of random operations over a small range', () => {
    const rand = prng(20240611);
    const R = 200;
    const pick = (): bigint => BigInt(Math.floor(rand() * R));
    const s = new IntervalSet();
    const ref = new Set<bigint>();
    const refFirstFree = (from: bigint, to: bigint): bigint | undefined => {
      for (let v = from; v <= to; v++) if (!ref.has(v)) return v;
      return undefined;
    };
    const refCount = (from: bigint, to: bigint): bigint => {
      let n = 0n;
      for (const v of ref) if (v >= from && v <= to) n++;
      return n;
    };

    for (let op = 0; op < 5000; op++) {
      const r = rand();
      if (r < 0.4) {
        const v = pick();
        s.add(v);
        ref.add(v);
      } else if (r < 0.75) {
        const v = pick();
        s.delete(v);
        ref.delete(v);
      } else if (r < 0.8) {
        const a = pick();
        const b = a + BigInt(Math.floor(rand() * 12)) - 2n; // sometimes empty (b < a)
        s.addRange(a, b);
        for (let v = a; v <= b; v++) ref.add(v);
      } else if (r < 0.9) {
        const a = pick();
        const b = pick();
        expect(s.firstFree(a, b), `op ${op}: firstFree(${a}, ${b})`).toBe(refFirstFree(a, b));
      } else {
        const a = pick();
        const b = pick();
        expect(s.countIn(a, b), `op ${op}: countIn(${a}, ${b})`).toBe(refCount(a, b));
      }
      if (op % 50 === 0) {
        checkInvariant(s);
        for (let v = -1n; v <= BigInt(R); v++) expect(s.has(v), `op ${op}: has(${v})`).toBe(ref.has(v));
      }
    }
    checkInvariant(s);
    expect(s.size).toBe(BigInt(ref.size));
    // Rebuilding from the intervals gives the same set.
    expect(IntervalSet.from(s.intervals()).intervals()).toEqual(s.intervals());
  });
});
