/**
 * The one place tests wire a Plugin. Defaults need no root and touch no host: a fresh State, a
 * MemoryStore, a RecordingExecutor, every link name free, no links of ours, the pool
 * 10.200.0.0/16/24. A test names only what differs (its store, executor, kernel snapshot,
 * background, host ports...); the host tier passes the real probes (test/host/plugin-fixture.ts).
 */
import type { Logger } from 'pino';
import type { Difference } from '../../src/doctor/diagnose.js';
import type { DataPlaneView } from '../../src/doctor/vxlan.js';
import type { HostPorts, LinkOwner, Proto } from '../../src/decision.js';
import type { IpamEnv } from '../../src/driver/ipam.js';
import { State } from '../../src/driver/state.js';
import type { Background } from '../../src/host/background.js';
import type { Executor } from '../../src/host/executor.js';
import type { KernelSnapshot } from '../../src/host/kernel-snapshot.js';
import type { MarkedLink } from '../../src/host/probe.js';
import { parseDefaultPools } from '../../src/ip/pools.js';
import { Plugin } from '../../src/plugin.js';
import type { ClusterPort } from '../../src/multihost/agent.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { StateStore } from '../../src/store/state-store.js';
import { RecordingExecutor } from './recording-executor.js';

export interface TestPluginOptions<E extends Executor = RecordingExecutor, S extends StateStore = MemoryStore> {
  readonly state?: State;
  readonly store?: S;
  readonly exec?: E;
  /** Default: every name is free ('absent'). */
  readonly linkOwner?: (name: string, log: Logger) => Promise<LinkOwner>;
  /** Default: no links of ours. */
  readonly ourLinks?: (log: Logger) => Promise<MarkedLink[]>;
  /** MYNET_DEFAULT_POOLS text for the IPAM environment (default 10.200.0.0/16/24). */
  readonly pools?: string;
  /** The whole IPAM environment, instead of `pools`. */
  readonly ipamEnv?: () => IpamEnv;
  readonly hostPorts?: (protos: readonly Proto[]) => Promise<HostPorts>;
  readonly now?: () => Date;
  /** Without one, the doctor refuses (no kernel snapshot available). */
  readonly snapshot?: (log: Logger) => Promise<KernelSnapshot>;
  readonly onDifferences?: (found: readonly Difference[]) => void;
  readonly background?: Background;
  readonly cluster?: ClusterPort;
  /** What the cluster's data plane last knew (main.ts: planeView of the agent's planes). */
  readonly dataPlane?: () => Promise<DataPlaneView>;
}

export interface TestPlugin<E extends Executor, S extends StateStore> {
  readonly plugin: Plugin;
  readonly state: State;
  readonly store: S;
  readonly exec: E;
}

export const DEFAULT_TEST_POOLS = '10.200.0.0/16/24';

export function testPlugin<E extends Executor = RecordingExecutor, S extends StateStore = MemoryStore>(
  o: TestPluginOptions<E, S> = {},
): TestPlugin<E, S> {
  const state = o.state ?? new State();
  const store = o.store ?? (new MemoryStore() as unknown as S);
  const exec = o.exec ?? (new RecordingExecutor() as unknown as E);
  const defaultPools = parseDefaultPools(o.pools ?? DEFAULT_TEST_POOLS);
  const plugin = new Plugin({
    state,
    store,
    exec,
    linkOwner: o.linkOwner ?? (() => Promise.resolve('absent')),
    ourLinks: o.ourLinks ?? (() => Promise.resolve([])),
    ipamEnv: o.ipamEnv ?? (() => ({ defaultPools, hostPrefixes: [] })),
    ...(o.hostPorts ? { hostPorts: o.hostPorts } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.snapshot ? { snapshot: o.snapshot } : {}),
    ...(o.onDifferences ? { onDifferences: o.onDifferences } : {}),
    ...(o.background ? { background: o.background } : {}),
    ...(o.cluster ? { cluster: o.cluster } : {}),
    ...(o.dataPlane ? { dataPlane: o.dataPlane } : {}),
  });
  return { plugin, state, store, exec };
}
