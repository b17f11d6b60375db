/**
 * Issue 23 item 4: a host whose MYNET_NODE_ADDRESS is IPv6, through the real orchestrator and
 * cluster agent on an in-memory etcd. The network's MTU is the underlay's minus VXLAN's 70 bytes
 * over IPv6 (rules/mtu.ts), its records carry the IPv6 underlay and every reader accepts them,
 * the VXLAN device's source is that address and its guard matches `ip6 saddr`. An encrypted
 * network over an IPv6 underlay: test/unit/multihost/wireguard/create.test.ts and underlay6.test.ts.
 */
import { readPolicyRecord } from '../../../src/cluster/policy-records.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseKey, PREFIX } from '../../../src/cluster/keys.js';
import { readRecord } from '../../../src/cluster/records.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { renderOp } from '../../../src/plan/step.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { hexId, silentLog as log } from '../support.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const UNDERLAY = '2001:db8:62::1';

describe('a host on an IPv6 underlay', () => {
  it('defines the network at the underlay MTU minus 70, publishes its IPv6 underlay, sends VXLAN from it and guards with ip6 saddr', async () => {
    const kv = new MemoryKv();
    const h = clusterHost(kv, 'host-a', UNDERLAY, { underlayMtu: 1500 });
    agents.push(h.agent);
    const nid = hexId(0x62);
    const pool = await clusterNetwork(h, { network: nid, pool: '10.223.62.0/24', cluster: 'mn62' });
    const ip = await h.plugin.requestAddress({ PoolID: pool }, log);
    await h.plugin.createEndpoint({ NetworkID: nid, EndpointID: hexId(0x63), Interface: { Address: ip.Address } }, log);
    const all = (await kv.list(PREFIX)).items;
    const records = all.map((it) => {
      const where = parseKey(it.key);
      return !where
        ? { ok: false as const, problem: it.key }
        : where.kind === 'policy'
          ? readPolicyRecord(it.key, it.value)
          : readRecord(where.kind, it.key, it.value);
    });
    // Every reader (the other hosts') accepts what this host wrote.
    expect(records.filter((r) => !r.ok)).toEqual([]);
    const got = records.flatMap((r) => (r.ok ? [r.record as unknown as Record<string, unknown>] : []));
    expect(got.find((r) => 'vni' in r && 'subnet' in r)).toMatchObject({ mtu: 1430 });
    expect(got.find((r) => 'underlay' in r)).toMatchObject({ underlay: UNDERLAY });
    const plan = h.exec.calls.map((c) => renderOp(c.op)).join('\n');
    expect(plan).toMatch(new RegExp(`type vxlan id \\d+ local ${UNDERLAY} dstport 4789`));
    expect(plan).toMatch(/mtu 1430/);
    expect(plan).toMatch(/type ipv6_addr;/);
    expect(plan).toMatch(/@th,96,24 \d+ ip6 saddr != @vxpeers-/);
  });
});
