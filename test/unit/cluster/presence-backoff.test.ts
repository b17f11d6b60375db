/**
 * Issue 22, finding 18: after a lost lease, presence was tried again every second, each failure
 * told to the agent (one warning each: 36 in 40 s). Now the tries follow backoff.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodePresence } from '../../../src/cluster/presence.js';
import { MemoryKv } from '../../helpers/memory-kv.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('presence after a lost lease', () => {
  it('is tried again with a capped exponential back-off, not every second, and comes back when etcd does', async () => {
    vi.useFakeTimers();
    const kv = new MemoryKv();
    let losses = 0;
    let restored = 0;
    const p = new NodePresence(
      kv,
      { name: 'mnt-nf-host', address: '198.18.130.1' },
      { onLost: () => losses++, onRestored: () => restored++ },
    );
    await p.start();
    kv.down = true;
    for (const expire of kv.lost.values()) expire();
    await vi.advanceTimersByTimeAsync(40_000);
    // 1 s, 2 s, 4 s, 8 s, 16 s steps (each wait in [step/2, step]): at most 7 tries in 40 s.
    expect(losses).toBeGreaterThanOrEqual(3);
    expect(losses).toBeLessThanOrEqual(8);
    kv.down = false;
    await vi.advanceTimersByTimeAsync(31_000);
    expect(restored).toBe(1);
    await p.stop();
  });
});
