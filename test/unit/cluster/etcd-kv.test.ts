/**
 * EtcdKv's time bound around a watch (issue 22, finding 22): a watch that etcd creates only after
 * the bound gave up is cancelled as soon as it exists, instead of delivering events to nobody.
 * The etcd3 client is replaced by a stand-in whose watch is made late; the real client against
 * a real, frozen etcd is the host tier's (test/host/cluster-etcd.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { EtcdKv } from '../../../src/cluster/etcd-kv.js';

function lateWatchClient(delayMs: number): { client: unknown; cancelled: () => number } {
  let cancels = 0;
  const watcher = { on: () => watcher, cancel: () => ((cancels += 1), Promise.resolve()) };
  const builder = {
    prefix: () => builder,
    startRevision: () => builder,
    create: () => new Promise((r) => setTimeout(() => r(watcher), delayMs)),
  };
  return { client: { watch: () => builder }, cancelled: () => cancels };
}

describe('EtcdKv.watch and its time bound', () => {
  it('a watch made after the bound expired is cancelled once it exists; one made in time is not', async () => {
    const kv = new EtcdKv({ endpoints: ['http://127.0.0.1:1'], timeoutMs: 20 });
    const late = lateWatchClient(80);
    (kv as unknown as { client: unknown }).client = late.client;
    await expect(kv.watch('/mynet/v1/endpoints/blue/', 5, { onEvents: () => undefined, onBroken: () => undefined })).rejects.toThrow(
      /did not answer watch .* within 20 ms/,
    );
    expect(late.cancelled()).toBe(0);
    await new Promise((r) => setTimeout(r, 120));
    expect(late.cancelled()).toBe(1);

    const prompt = lateWatchClient(1);
    (kv as unknown as { client: unknown }).client = prompt.client;
    const w = await kv.watch('/mynet/v1/endpoints/blue/', 5, { onEvents: () => undefined, onBroken: () => undefined });
    await new Promise((r) => setTimeout(r, 30));
    expect(prompt.cancelled()).toBe(0);
    await w.cancel();
    expect(prompt.cancelled()).toBe(1);
  });
});
