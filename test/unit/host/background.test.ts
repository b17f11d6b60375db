/**
 * Background ordering by what steps touch (plan/step.ts resourcesOf), not by their text: a plan
 * waits exactly when it touches a link, address or port with queued work.
 */
import { describe, expect, it } from 'vitest';
import { Background } from '../../../src/host/background.js';
import type { HostStep } from '../../../src/plan/step.js';
import { add, elementObj } from '../../../src/plan/nft-change.js';
import { nftOp } from '../../../src/plan/nft.js';
import { RecordingExecutor } from '../../helpers/recording-executor.js';
import { silentLog } from '../support.js';

/** A Background whose steps wait until release() is called. */
function gated() {
  const rec = new RecordingExecutor();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const bg = new Background({
    run: async (op, log) => {
      await gate;
      await rec.run(op, log);
    },
    runIpBatch: (ops, log) => rec.runIpBatch(ops, log),
  });
  return { bg, rec, release: () => release() };
}
const later = (run: HostStep['run']): HostStep => ({ what: 'later', run, later: true });

describe('Background.touches', () => {
  it('a queued flush of an address holds back a plan publishing to that address, not one to 10.0.0.12', async () => {
    const { bg, release } = gated();
    bg.enqueue([later({ kind: 'conntrack-flush', address: '10.0.0.1' })], silentLog);
    expect(bg.touches([{ what: 'p', run: nftOp([add(elementObj('pub4any', [{ key: 'tcp . 80', value: '10.0.0.1 . 80' }]))]) }])).toBe(true);
    expect(bg.touches([{ what: 'p', run: nftOp([add(elementObj('pub4any', [{ key: 'tcp . 80', value: '10.0.0.12 . 80' }]))]) }])).toBe(
      false,
    );
    release();
    await bg.idle();
    expect(bg.touches([{ what: 'p', run: nftOp([add(elementObj('pub4any', [{ key: 'tcp . 80', value: '10.0.0.1 . 80' }]))]) }])).toBe(
      false,
    );
  });

  it('a queued reap holds back the veth name it and the reaps folded into it cover, in run or undo, and nothing else', async () => {
    const { bg, release } = gated();
    bg.enqueue([later({ kind: 'link-reap', name: 'mnh1' })], silentLog);
    bg.enqueue([later({ kind: 'link-reap', name: 'mnh2' })], silentLog);
    bg.enqueue([later({ kind: 'link-reap', name: 'mnh3' })], silentLog);
    expect(bg.size).toBe(3);
    for (const n of ['mnh1', 'mnh2', 'mnh3']) {
      expect(
        bg.touches([{ what: 'make', run: { kind: 'ip', args: ['link', 'add', 'name', n, 'type', 'veth', 'peer', 'name', 'mncx'] } }]),
      ).toBe(true);
    }
    expect(
      bg.touches([
        { what: 'x', run: { kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' }, undo: { kind: 'link-del', name: 'mnh2' } },
      ]),
    ).toBe(true);
    expect(bg.touches([{ what: 'make', run: { kind: 'ip', args: ['link', 'add', 'name', 'mnh12', 'type', 'dummy'] } }])).toBe(false);
    release();
    await bg.idle();
    expect(bg.size).toBe(0);
    expect(bg.touches([{ what: 'make', run: { kind: 'link-del', name: 'mnh1' } }])).toBe(false);
  });

  it('a queued port flush holds back a plan publishing that port', async () => {
    const { bg, release } = gated();
    bg.enqueue([later({ kind: 'conntrack-flush-ports', udp: [5353], sctp: [] })], silentLog);
    expect(bg.touches([{ what: 'p', run: nftOp([add(elementObj('pub4any', [{ key: 'udp . 5353', value: '10.0.0.3 . 53' }]))]) }])).toBe(
      true,
    );
    expect(bg.touches([{ what: 'p', run: nftOp([add(elementObj('pub4any', [{ key: 'tcp . 5353', value: '10.0.0.3 . 53' }]))]) }])).toBe(
      false,
    );
    release();
    await bg.idle();
  });
});
