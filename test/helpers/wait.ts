/**
 * The one way tests wait: for a positive marker, never for time to pass. A test that must show
 * that something did not happen asserts it after the event that would have caused it (or after
 * a marker that comes later), not after a sleep.
 */

export interface WaitOptions {
  /** Give up after this long (default 5 s): the failure says what was awaited. */
  readonly ms?: number;
  /** Poll every this many ms (default 10). */
  readonly every?: number;
  /** What to add to the failure (the state seen last), e.g. the entries a device has. */
  readonly show?: () => unknown;
  /**
   * An error thrown by the check counts as "not yet" (a device the plugin has not made yet) and
   * is named in the failure; without this it fails the wait at once.
   */
  readonly retryErrors?: boolean;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the ms it took once `ok` holds; rejects after `ms` naming `what`. */
export async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, o: WaitOptions = {}): Promise<number> {
  const ms = o.ms ?? 5000;
  const t0 = performance.now();
  let last: unknown;
  for (;;) {
    try {
      if (await ok()) return performance.now() - t0;
    } catch (err) {
      if (!o.retryErrors) throw err;
      last = err;
    }
    if (performance.now() - t0 > ms) {
      let seen = '';
      if (o.show) {
        try {
          const s: unknown = await o.show();
          seen = typeof s === 'string' ? s : JSON.stringify(s);
        } catch (err) {
          seen = `(show failed: ${String(err)})`;
        }
      }
      const lastError = last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : JSON.stringify(last)}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${seen ? `: ${seen}` : ''}${lastError}`);
    }
    await pause(o.every ?? 10);
  }
}
