import { describe, expect, it } from 'vitest';
import { Backoff, RateLimitedWarning } from '../../../src/cluster/backoff.js';

describe('Backoff (the one retry policy of cluster/ and multihost/)', () => {
  it('doubles from first up to max, each wait drawn from [step/2, step]', () => {
    const low = new Backoff({ first: 100, max: 1000 }, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new Backoff({ first: 100, max: 1000 }, () => 1);
    expect([1, 2, 3, 4, 5, 6].map(() => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('starts from first again after reset', () => {
    const b = new Backoff({ first: 100, max: 1000 }, () => 1);
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('refuses a policy that cannot back off', () => {
    expect(() => new Backoff({ first: 0, max: 10 })).toThrow(/first 0 ms/);
    expect(() => new Backoff({ first: 10, max: 5 })).toThrow(/at most max 5 ms/);
  });
});

describe('RateLimitedWarning', () => {
  it('writes the first at once, then one per interval saying how many were left out', () => {
    let t = 0;
    const written: Record<string, unknown>[] = [];
    const w = new RateLimitedWarning(
      (f) => written.push(f),
      1000,
      () => t,
    );
    for (t = 0; t < 4000; t += 100) w.warnNow({ n: t }, 'x');
    expect(written).toEqual([
      { n: 0 },
      { n: 1000, sameWarningsLeftOut: 9 },
      { n: 2000, sameWarningsLeftOut: 9 },
      { n: 3000, sameWarningsLeftOut: 9 },
    ]);
    w.reset();
    expect(w.warnNow({ n: 'after' }, 'x')).toBe(true);
  });
});
