/**
 * Plugin.doctor: 'none' only reports, 'safe' repairs what is missing or drifted, 'all' also
 * removes orphans; one failed repair does not stop the others; it runs under the plugin's lock.
 * The host is a RecordingExecutor and the kernel a snapshot edited from a real run.
 */
import { describe, expect, it } from 'vitest';
import type { Difference } from '../../../src/doctor/diagnose.js';
import type { State } from '../../../src/driver/state.js';
import type { KernelSnapshot } from '../../../src/host/kernel-snapshot.js';
import { Plugin } from '../../../src/plugin.js';
import { hexId, silentLog } from '../support.js';
import { BR_SNAT, VETH_E3, cleanKernel, fixtureState, withLink, withoutLink } from './fixture.js';
import { testPlugin } from '../../helpers/test-plugin.js';

function setup(kernel: () => KernelSnapshot, state: State = fixtureState()) {
  const found: (readonly Difference[])[] = [];
  const { plugin, exec } = testPlugin({ state, snapshot: () => Promise.resolve(kernel()), onDifferences: (d) => found.push(d) });
  return { plugin, exec, found, state };
}

/** Down bridge (drift), missing veth (missing), orphan link. */
const broken = (): KernelSnapshot =>
  withLink(
    withLink(withoutLink(cleanKernel(), VETH_E3), BR_SNAT, (l) => ({ ...l, up: false })),
    'mn-orphan9',
    (l) => l,
  );
const summary = (rs: Awaited<ReturnType<Plugin['doctor']>>): string[] =>
  rs.map((r) => `${r.difference.kind} ${r.difference.object} ${r.repaired ? 'repaired' : r.error ? 'failed' : 'left'}`);

describe('Plugin.doctor', () => {
  it('a clean host: no results, nothing run, and the metric hook hears "none"', async () => {
    const { plugin, exec, found } = setup(cleanKernel);
    expect(await plugin.doctor(silentLog, 'all')).toEqual([]);
    expect(exec.calls).toEqual([]);
    expect(found).toEqual([[]]);
  });

  it("'none' reports every difference and changes nothing", async () => {
    const { plugin, exec, found } = setup(broken);
    const rs = await plugin.doctor(silentLog, 'none');
    expect(summary(rs)).toEqual([`drift bridge ${BR_SNAT} left`, `missing veth ${VETH_E3} left`, 'orphan link mn-orphan9 left']);
    expect(exec.calls).toEqual([]);
    expect(found[0]).toHaveLength(3);
  });

  it("'safe' repairs missing and drifted things, and leaves orphans", async () => {
    const { plugin, exec } = setup(broken);
    const rs = await plugin.doctor(silentLog, 'safe');
    expect(summary(rs)).toEqual([`drift bridge ${BR_SNAT} repaired`, `missing veth ${VETH_E3} repaired`, 'orphan link mn-orphan9 left']);
    expect(exec.lines).toContain(`ip link set dev ${BR_SNAT} up`);
    expect(exec.lines.some((l) => l.startsWith(`ip link add name ${VETH_E3} `))).toBe(true);
    expect(exec.lines.some((l) => l.includes('mn-orphan9'))).toBe(false);
  });

  it("'all' also removes orphans, through the ownership-checked delete", async () => {
    const { plugin, exec } = setup(broken);
    const rs = await plugin.doctor(silentLog, 'all');
    expect(rs.every((r) => r.repaired)).toBe(true);
    expect(exec.ops).toContainEqual({ kind: 'link-del', name: 'mn-orphan9' });
  });

  it('a repair that fails is reported with its error, its steps are undone, and the others still run', async () => {
    const { plugin, exec } = setup(broken);
    exec.failWhen = (op) => op.kind === 'ip' && op.args.includes(VETH_E3) && op.args.includes('alias');
    const rs = await plugin.doctor(silentLog, 'safe');
    expect(summary(rs)).toEqual([`drift bridge ${BR_SNAT} repaired`, `missing veth ${VETH_E3} failed`, 'orphan link mn-orphan9 left']);
    expect(rs[1]?.error).toMatch(/mark veth .*Operation not permitted/);
    // The veth made before the failing step is deleted again.
    expect(exec.ops.at(-1)).toEqual({ kind: 'link-del', name: VETH_E3 });
  });

  it("runs after the request in flight (one writer at a time), so it sees that request's network", async () => {
    const seen: number[] = [];
    const state = fixtureState();
    const { plugin: p } = setup(() => {
      seen.push(state.networks.size);
      return cleanKernel();
    }, state);
    const create = p.createNetwork(
      { NetworkID: hexId(77), Options: {}, IPv4Data: [{ Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24' }], IPv6Data: [] },
      silentLog,
    );
    const rs = await p.doctor(silentLog, 'none');
    await create;
    expect(seen).toEqual([4]);
    // The new network's bridge is not in the (stale) snapshot: reported as missing.
    expect(rs.map((r) => r.difference.object)).toContain(`bridge mn-${hexId(77, 12)}`);
  });

  it('without a snapshot source it refuses, naming why', async () => {
    const { plugin: p } = testPlugin({ state: fixtureState(), pools: '' });
    await expect(p.doctor(silentLog, 'none')).rejects.toThrow('doctor: no kernel snapshot available');
  });
});
