/**
 * Issue 23: another host's container of a cluster network is served as this host's own of that
 * network are, under this host's name of the network, its reverse (PTR) names included, in
 * in-addr.arpa and ip6.arpa (src/dns/records.ts `others`). Pure.
 */
import { describe, expect, it } from 'vitest';
import { type ContainerInfo, NameTable, reverseName } from '../../../src/dns/records.js';

const NET = 'n1';
// As this host's Docker reports a container (dns/sync.ts): compose names the network <project>_blue.
const cli: ContainerInfo = {
  id: 'c-cli',
  name: 'cli',
  networks: [{ networkId: NET, networkName: 'proj_blue', cluster: 'blue', ipv4: '10.77.0.3', ipv6: 'fd63:1::3', aliases: [] }],
};
// As the cluster agent reports another host's endpoint (multihost/networks.ts remoteNames).
const web = (networkName = 'blue'): ContainerInfo => ({
  id: 'cluster:e-web',
  name: 'web',
  networks: [{ networkId: NET, networkName, cluster: 'blue', ipv4: '10.77.0.2', ipv6: 'fd63:1::2', aliases: ['api'] }],
});
const ptr = (t: NameTable, ip: string): readonly string[] => {
  const r = t.lookup(reverseName(ip) as string);
  return r.kind === 'answer' ? r.ptr : [];
};

describe("other hosts' containers, as this host's own", () => {
  it("PTR of another host's container, v4 and v6, names it under this host's name of the network, as a local one's", () => {
    const t = new NameTable('mynet', [cli], [web()]);
    expect(ptr(t, '10.77.0.3')).toEqual(['cli.proj_blue.mynet']);
    expect(ptr(t, '10.77.0.2')).toEqual(['web.proj_blue.mynet']);
    expect(ptr(t, 'fd63:1::2')).toEqual(['web.proj_blue.mynet']);
    // The name a PTR gives resolves forward here, as a local container's does.
    expect(t.lookup('web.proj_blue.mynet')).toEqual({ kind: 'answer', a: ['10.77.0.2'], aaaa: ['fd63:1::2'], ptr: [] });
    expect(t.lookup('api.proj_blue.mynet')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
    // The cluster's name and the bare name keep working.
    expect(t.lookup('web.blue.mynet')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
    expect(t.lookup('api')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
  });

  it('its record gone, its PTR and names go; another host (network id) is not renamed by this one', () => {
    const gone = new NameTable('mynet', [cli], []);
    expect(gone.lookup(reverseName('10.77.0.2') as string)).toEqual({ kind: 'refused' });
    expect(gone.lookup(reverseName('fd63:1::2') as string)).toEqual({ kind: 'refused' });
    expect(gone.lookup('web.proj_blue.mynet')).toEqual({ kind: 'nxdomain' });
    // No container of this host on the network: Docker's name of it is not known here, the cluster's serves.
    const alone = new NameTable('mynet', [], [web()]);
    expect(ptr(alone, '10.77.0.2')).toEqual(['web.blue.mynet']);
  });

  it("a network name that is no DNS label: the cluster's name serves (names, bare, PTR), for local and remote containers alike", () => {
    const dotted: ContainerInfo = { ...cli, networks: [{ ...(cli.networks[0] as ContainerInfo['networks'][0]), networkName: 'my.blue' }] };
    const t = new NameTable('mynet', [dotted], [web()]);
    expect(ptr(t, '10.77.0.3')).toEqual(['cli.blue.mynet']);
    expect(ptr(t, '10.77.0.2')).toEqual(['web.blue.mynet']);
    expect(t.lookup('cli')).toMatchObject({ kind: 'answer', a: ['10.77.0.3'] });
    expect(t.lookup('web.blue.mynet')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
  });
});
