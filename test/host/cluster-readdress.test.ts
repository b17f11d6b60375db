/**
 * Issue 22, finding 9, host tier: a host's underlay address changes while its plugin runs. B runs
 * with MYNET_NODE_ADDRESS unset (the default: its source address towards etcd). B's address on
 * the underlay changes live (a second address added, the first removed); its plugin keeps the
 * old one, so its VXLAN traffic leaves from an address the other hosts' guards do not take. The
 * plugin must say so (status, doctor) within the reconcile interval, and a restart must take the
 * whole cluster to the new address: nothing of the old one left in etcd, in A's forwarding
 * entries or in A's guard, and A's container reaches B's again.
 *
 * Two hosts as namespaces on an underlay bridge (198.18.205.0/24, only inside these namespaces),
 * real etcd (ports 24100/24101 in its namespace), a real plugin process per host
 * (cluster-hosts-fixture.ts). Every name made carries the tag mnt-mna9-; `destroy` removes what the
 * test made. The reconcile loop runs every 2 s.
 */
import { describe, expect, it } from 'vitest';
import { vxlanName } from '../../src/plan/vxlan.js';
import { peerSet } from '../../src/plan/vxlan-firewall.js';
import { type Host, clusterForFile } from './cluster-hosts-fixture.js';
import { clusterStatus, endpointRecords, fdbOf, following, heldBy, tcpLine, until } from './cluster-checks.js';
import { createNetwork, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';
import { adminGet } from './plugin-client.js';
import { pings } from './plugin-fixture.js';

const theCluster = clusterForFile({
  hosts: 2,
  tag: 'mnt-mna9-',
  underlay: '198.18.205',
  etcdPorts: [24100, 24101],
  env: { MYNET_RECONCILE_INTERVAL: '2' },
  // B's address is detected (the default); A's is set, as the fixture does for every host.
  hostEnv: { b: { MYNET_NODE_ADDRESS: '' } },
});
const host = (i: number): Host => theCluster().hosts[i] as Host;

describe('finding 9: a host whose underlay address changes', () => {
  it('says so (status, doctor) while it runs with the old one; restarted, the cluster follows the new one and nothing of the old stays', async () => {
    const cluster = theCluster();
    const [a, b] = [host(0), host(1)];
    const cl = 'na9';
    const na = await createNetwork(a, { subnet: '10.229.9.0/24', cluster: cl });
    const nb = await createNetwork(b, { subnet: '10.229.9.0/24', cluster: cl });
    const ca = await runContainer(na);
    const cb = await runContainer(nb);
    const [before, after] = [b.address, cluster.at(12)];
    await until('A forwards to B at its first address', async () => (await fdbOf(na)).get(cb.mac) === before, 20_000);
    expect(await pings(ca.box, cb.ip)).toBe(true);

    // B's underlay address changes: the new one added, the old one removed (promoted, so the
    // underlay's route stays and now leaves from the new address).
    const ul = cluster.underlayIf;
    await b.ns.run(['sysctl', '-q', '-w', `net.ipv4.conf.${ul}.promote_secondaries=1`]);
    await b.ns.run(['ip', 'addr', 'add', `${after}/24`, 'dev', ul]);
    await b.ns.run(['ip', 'addr', 'del', `${before}/24`, 'dev', ul]);
    expect(await b.ns.run(['ip', 'route', 'get', cluster.etcdAddress])).toContain(`src ${after}`);

    // Within the reconcile interval B says it runs with the old address and needs a restart.
    const moved = async (): Promise<string> => JSON.stringify(await clusterStatus(b.plugin.adminSocket));
    await until(
      'B shows its address moved',
      async () => (await moved()).includes(`"addressMoved":{"running":"${before}","now":"${after}"`),
      20_000,
      moved,
    );
    expect(await adminGet(b.plugin.adminSocket, '/doctor')).toContain(`is now ${after}`);
    expect(b.plugin.problems().join('\n')).toContain('underlay address');

    // A restart takes every part to the new address.
    await b.plugin.stop();
    await b.plugin.start();
    await following(b.plugin.adminSocket, 20_000);
    const records = async (): Promise<string> => JSON.stringify([...(await endpointRecords(cluster.etcd, cl)).values()]);
    await until(
      'B republished its record with the new underlay',
      async () => (await records()).includes(`"underlay":"${after}"`),
      20_000,
      records,
    );
    await until('A forwards to B at its new address', async () => (await fdbOf(na)).get(cb.mac) === after, 20_000);
    const guard = async (): Promise<string> => a.ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(na.id)]);
    await until('A takes VXLAN from B at its new address', async () => (await guard()).includes(after), 20_000, guard);
    expect(await pings(ca.box, cb.ip)).toBe(true);
    expect(await tcpLine(ca.box, cb.box, cb.ip, 24102, 'mna9-line')).toContain('mna9-line');

    // Nothing of the old address stays: etcd's records and node presence, A's entries, A's guard,
    // B's own device and status.
    expect(heldBy(await endpointRecords(cluster.etcd, cl), b.nodeName)).toEqual([cb.ip]);
    expect(await records()).not.toContain(`"${before}"`);
    expect(JSON.stringify([...(await cluster.etcd.get('/mynet/v1/nodes/')).values()])).not.toContain(`"${before}"`);
    expect([...(await fdbOf(na)).values()]).not.toContain(before);
    expect(await guard()).not.toMatch(new RegExp(`${before.replaceAll('.', '\\.')}\\b`));
    expect(await b.ns.run(['ip', '-d', 'link', 'show', 'dev', vxlanName(nb.id)])).toContain(`local ${after}`);
    expect(await moved()).not.toContain('addressMoved');
    expect(await adminGet(b.plugin.adminSocket, '/doctor')).not.toContain(before);

    await removeContainer(ca);
    await removeContainer(cb);
    await removeNetwork(na);
    await removeNetwork(nb);
  }, 120_000);
});
