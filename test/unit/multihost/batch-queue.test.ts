/** Issue 22, finding 13: a watch storm is coalesced before it reaches the kernel. */
import { describe, expect, it } from 'vitest';
import { type Batch, CoalescingQueue } from '../../../src/multihost/batch-queue.js';

interface Ch {
  readonly id: string;
  readonly v: number;
}

function recording(): { q: CoalescingQueue<Ch>; batches: Batch<Ch>[]; release: () => void; errors: unknown[] } {
  const batches: Batch<Ch>[] = [];
  const errors: unknown[] = [];
  let release = (): void => undefined;
  let gate = new Promise<void>((r) => (release = r));
  const q = new CoalescingQueue<Ch>(
    (c) => c.id,
    async (b) => {
      batches.push(b);
      await gate; // the first batch is "in the kernel" until released
      gate = Promise.resolve();
    },
    (err) => errors.push(err),
  );
  return { q, batches, release: () => release(), errors };
}

describe('CoalescingQueue', () => {
  it('a storm of 500 changes while one batch is applied becomes one more batch, one change per endpoint, in the order of last changes', async () => {
    const { q, batches, release } = recording();
    q.push([{ id: 'real', v: 0 }], true, true);
    await Promise.resolve();
    for (let i = 1; i <= 500; i++) q.push([{ id: `junk${i % 3}`, v: i }], false, true);
    q.push([{ id: 'real', v: 1 }], false, true);
    release();
    await q.idle();
    expect(batches).toHaveLength(2);
    expect(batches[0]).toMatchObject({ changes: [{ id: 'real', v: 0 }], whole: true, folded: 0 });
    const second = batches[1];
    expect(second?.changes).toEqual([
      { id: 'junk0', v: 498 },
      { id: 'junk1', v: 499 },
      { id: 'junk2', v: 500 },
      { id: 'real', v: 1 },
    ]);
    expect(second?.whole).toBe(false);
    expect(second?.folded).toBe(497);
  });

  it('a waiting batch is whole if any change folded into it asked for a whole comparison', async () => {
    const { q, batches, release } = recording();
    q.push([], false, true);
    await Promise.resolve();
    q.push([{ id: 'a', v: 1 }], false, true);
    q.push([], true, false);
    release();
    await q.idle();
    expect(batches.map((b) => b.whole)).toEqual([false, true]);
  });

  it('lags are measured only for changes whose last version came from the watch', async () => {
    const { q, batches, release } = recording();
    q.push([], false, true);
    await Promise.resolve();
    q.push(
      [
        { id: 'a', v: 1 },
        { id: 'b', v: 1 },
      ],
      false,
      true,
    );
    q.push([{ id: 'b', v: 2 }], false, false); // judged again (a claim changed), not news from etcd
    release();
    await q.idle();
    expect(batches[1]?.watched).toEqual([{ id: 'a', v: 1 }]);
  });

  it('a failed batch is reported and the next one still runs', async () => {
    const errors: unknown[] = [];
    const seen: number[] = [];
    const q = new CoalescingQueue<Ch>(
      (c) => c.id,
      (b) => {
        seen.push(b.changes.length);
        return seen.length === 1 ? Promise.reject(new Error('ip failed')) : Promise.resolve();
      },
      (err) => errors.push(err),
    );
    q.push([{ id: 'a', v: 1 }], false, true);
    await q.idle();
    q.push([{ id: 'b', v: 1 }], false, true);
    await q.idle();
    expect(seen).toEqual([1, 1]);
    expect(errors).toHaveLength(1);
  });

  it('changes pushed while nothing runs are applied without waiting for more', async () => {
    const { q, batches, release } = recording();
    release();
    q.push([{ id: 'a', v: 1 }], false, true);
    await q.idle();
    q.push([{ id: 'a', v: 2 }], false, true);
    await q.idle();
    expect(batches.map((b) => b.changes)).toEqual([[{ id: 'a', v: 1 }], [{ id: 'a', v: 2 }]]);
  });
});
