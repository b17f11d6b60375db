/**
 * The one retry policy of the cluster code (issue 21, "one retry/back-off policy"; issue 22,
 * finding 18): every retry loop in cluster/ and multihost/ waits what a Backoff says, and warns
 * through a RateLimitedWarning.
 *
 * Capped exponential with jitter: the n-th wait is drawn from [d/2, d] with d = min(max,
 * first·2^n) ("equal jitter"): hosts that lost etcd together do not all come back in the same
 * millisecond, and no wait is ever under half its step, so a dead etcd is asked at most
 * ~2/max times a second per loop once the cap is reached.
 */
export interface BackoffPolicy {
  readonly first: number;
  readonly max: number;
}

/** The default: 500 ms first, 30 s at most. */
export const DEFAULT_BACKOFF: BackoffPolicy = { first: 500, max: 30_000 };

export class Backoff {
  private n = 0;

  constructor(
    readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    if (!(policy.first > 0) || !(policy.max >= policy.first))
      throw new RangeError(`backoff: first ${policy.first} ms must be > 0 and at most max ${policy.max} ms`);
  }

  /** The wait before the next try, in ms; each call doubles the step up to the cap. */
  next(): number {
    // 2^n overflows to Infinity long after the cap: min() keeps it finite.
    const step = Math.min(this.policy.max, this.policy.first * 2 ** this.n);
    if (step < this.policy.max) this.n++;
    return Math.round(step / 2 + (step / 2) * this.random());
  }

  /** Tries so far since the last success. */
  get attempts(): number {
    return this.n;
  }

  /** A try succeeded: the next failure starts from `first` again. */
  reset(): void {
    this.n = 0;
  }
}

/**
 * One warning per `everyMs` at most for one recurring failure: the first is written at once, the
 * ones within the interval are counted and the next written one says how many were left out.
 */
export class RateLimitedWarning {
  private last = -Infinity;
  private skipped = 0;

  constructor(
    private readonly warn: (fields: Record<string, unknown>, msg: string) => void,
    private readonly everyMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes the warning unless one was written less than `everyMs` ago. Answers whether it wrote. */
  warnNow(fields: Record<string, unknown>, msg: string): boolean {
    const t = this.now();
    if (t - this.last < this.everyMs) {
      this.skipped++;
      return false;
    }
    this.warn({ ...fields, ...(this.skipped > 0 && { sameWarningsLeftOut: this.skipped }) }, msg);
    this.last = t;
    this.skipped = 0;
    return true;
  }

  /** The failure ended: the next one is written at once. */
  reset(): void {
    this.last = -Infinity;
    this.skipped = 0;
  }
}
