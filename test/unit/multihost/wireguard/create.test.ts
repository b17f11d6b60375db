/**
 * An encrypted cluster network through the orchestrator (issue 24), two hosts on one in-memory
 * etcd: the encryption is part of the recorded definition, a host that cannot encrypt is refused
 * before it writes anything, and the MTU leaves room for WireGuard and VXLAN.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../../src/cluster/keys.js';
import type { ClusterAgent } from '../../../../src/multihost/agent.js';
import type { WireGuardPort } from '../../../../src/multihost/wireguard/port.js';
import { renderOp } from '../../../../src/plan/step.js';
import { type ClusterHost, clusterHost } from '../../../helpers/cluster-host.js';
import { MemoryKv } from '../../../helpers/memory-kv.js';
import { hexId, silentLog as log } from '../../support.js';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xe1);
const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const CAN: WireGuardPort = { ability: () => ({ ok: true, runner: 'userspace' }), tunnelAddress: '198.18.170.1' };
const CANNOT: WireGuardPort = {
  ability: () => ({ ok: false, refusal: 'option mynet.encrypt: this host cannot encrypt: set MYNET_WIREGUARD=userspace' }),
  tunnelAddress: '198.18.170.2',
};

function host(kv: MemoryKv, name: string, address: string, wireguard?: WireGuardPort): ClusterHost {
  const h = clusterHost(kv, name, address, wireguard ? { wireguard } : {});
  agents.push(h.agent);
  return h;
}

async function create(h: ClusterHost, g: Record<string, string>): Promise<unknown> {
  const pool = await h.plugin.requestPool({ Pool: '10.216.0.0/16' }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
  return h.plugin
    .createNetwork(
      {
        NetworkID: NET,
        Options: { 'com.docker.network.generic': { 'mynet.cluster': 'secure', ...g } },
        IPv4Data: [{ Pool: '10.216.0.0/16', Gateway: gw.Address }],
      },
      log,
    )
    .then(
      () => 'created',
      (e: unknown) => e,
    );
}

const ENCRYPT = { 'mynet.encrypt': 'wireguard' };

describe('encrypted cluster networks at create', () => {
  it('a host that can encrypt records the encryption; MTU 1500 - 60 - 50; VXLAN from the tunnel address', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.160.1', CAN);
    expect(await create(a, ENCRYPT)).toBe('created');
    const def = JSON.parse(kv.data.get(keys.network('secure'))?.value ?? '{}') as Record<string, unknown>;
    expect(def).toMatchObject({ encrypt: 'wireguard', mtu: 1390 });
    expect(a.plugin.state.networks.get(NET)?.cluster).toMatchObject({ encrypt: 'wireguard', local: '198.18.170.1', mtu: 1390 });
    const text = a.exec.calls.map((c) => renderOp(c.op)).join('\n');
    expect(text).toMatch(/type vxlan id \d+ local 198\.18\.170\.1 dstport 4789/);
    expect(text).toMatch(/mtu 1390/);
  });

  it('a host that cannot encrypt is refused with what to install or set, and writes nothing to etcd', async () => {
    const kv = new MemoryKv();
    const b = host(kv, 'host-b', '198.18.160.2', CANNOT);
    const err = await create(b, ENCRYPT);
    expect(err).toMatchObject({
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/option mynet.encrypt: this host cannot encrypt: set MYNET_WIREGUARD=userspace/) as unknown,
    });
    expect(kv.data.get(keys.network('secure'))).toBeUndefined();
    expect(b.plugin.state.networks.size).toBe(0);
    expect(b.exec.calls).toHaveLength(0);
    // A mynet built without WireGuard at all refuses the same way.
    const c = host(kv, 'host-c', '198.18.160.3');
    expect(await create(c, ENCRYPT)).toMatchObject({
      message: expect.stringMatching(/option mynet.encrypt: this mynet was started without WireGuard/) as unknown,
    });
  });

  it('the encryption is part of the definition: a plain create of an encrypted network is refused, and the other way round', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.160.1', CAN);
    const b = host(kv, 'host-b', '198.18.160.2', CAN);
    expect(await create(a, ENCRYPT)).toBe('created');
    expect(await create(b, {})).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(
        /encrypted \(wireguard\); this host asked for [^;]*multicast off\. Create it as recorded: --subnet \S+ --gateway \S+ -o mynet\.encrypt=wireguard/,
      ) as unknown,
    });
    expect(b.plugin.state.networks.size).toBe(0);
    const kv2 = new MemoryKv();
    const c = host(kv2, 'host-c', '198.18.160.3', CAN);
    const d = host(kv2, 'host-d', '198.18.160.4', CAN);
    expect(await create(c, {})).toBe('created');
    expect(await create(d, ENCRYPT)).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/multicast off; this host asked for .*encrypted \(wireguard\)/) as unknown,
    });
  });
});
