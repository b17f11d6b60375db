/** What `mynet status` and `mynet ports` are built from: the state of a real run, with and without Docker's names. */
import { describe, expect, it } from 'vitest';
import { NO_NAMES, type DockerNames } from '../../../src/admin/docker-names.js';
import { portsView, statusView } from '../../../src/admin/views.js';
import { State } from '../../../src/driver/state.js';
import { BR_DUAL, BR_INTERNAL, BR_SNAT, DUAL, E1, E2, E3, E4, INTERNAL, SNAT, VETH_E1, fixtureState } from '../doctor/fixture.js';

const NAMES: DockerNames = {
  networks: new Map([
    [DUAL, 'front'],
    [SNAT, 'back'],
  ]),
  endpoints: new Map([
    [E1, 'web'],
    [E2, 'admin'],
    [E3, 'api'],
  ]),
};

describe('statusView', () => {
  it("every network with Docker's name, its subnets, bare gateways, options and endpoints", () => {
    const v = statusView(fixtureState(), NAMES);
    expect(v.map((n) => [n.name, n.bridge])).toEqual([
      ['front', BR_DUAL],
      ['back', BR_SNAT],
      [undefined, BR_INTERNAL],
    ]);
    const front = v[0];
    expect(front).toMatchObject({ id: DUAL, subnets: ['10.201.0.0/24', 'fd00:201::/64'], gateways: ['10.201.0.1', 'fd00:201::1'] });
    expect(front?.options).toMatchObject({ mtu: 1500, masquerade: true, internal: false, ipv6: true });
    expect(front?.endpoints[0]?.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(front?.endpoints).toEqual([
      {
        id: E1,
        container: 'web',
        addresses: ['10.201.0.2/24', 'fd00:201::10/64'],
        mac: fixtureState().endpoints.get(E1)?.mac,
        hostVeth: VETH_E1,
        ports: 2,
      },
      expect.objectContaining({ id: E2, container: 'admin', addresses: ['10.201.0.3/24'], ports: 1 }),
    ]);
    expect(v[1]?.options).toMatchObject({ mtu: 1400, hostIpv4: '198.51.100.7' });
    expect(v[2]?.id).toBe(INTERNAL);
    expect(v[2]?.options.internal).toBe(true);
    expect(v[2]?.endpoints).toEqual([expect.objectContaining({ id: E4, ports: 0 })]);
    // No name known: the key is absent, not undefined (so --json stays clean).
    expect('name' in (v[2] ?? {})).toBe(false);
    expect('container' in (v[2]?.endpoints[0] ?? {})).toBe(false);
  });

  it("without Docker's names (dockerd unreachable) the ids stand alone", () => {
    const v = statusView(fixtureState(), NO_NAMES);
    expect(v.every((n) => !('name' in n) && n.endpoints.every((e) => !('container' in e)))).toBe(true);
  });

  it('no networks, nothing to show', () => {
    expect(statusView(new State(), NAMES)).toEqual([]);
  });

  it('is a copy: changing the view leaves the state alone', () => {
    const s = fixtureState();
    const v = statusView(s, NAMES);
    (v[0]?.options as Record<string, unknown>).mtu = 1;
    expect(s.networks.get(DUAL)?.options.mtu).toBe(1500);
  });
});

describe('portsView', () => {
  it('every binding, by host port then protocol, with the container, its address and port, and the network', () => {
    const v = portsView(fixtureState(), NAMES);
    expect(v.map((p) => [p.hostIp, p.hostPort, p.proto, p.container, `${p.containerIp}:${p.containerPort}`, p.network])).toEqual([
      ['*', 5353, 'udp', 'web', '10.201.0.2:53', 'front'],
      ['*', 8080, 'tcp', 'web', '10.201.0.2:80', 'front'],
      ['127.0.0.1', 8081, 'tcp', 'admin', '10.201.0.3:80', 'front'],
      ['0.0.0.0', 8443, 'tcp', 'api', '10.201.1.2:443', 'back'],
    ]);
    expect(v[0]?.endpoint).toBe(E1);
  });

  it("an IPv6 host address shows the container's IPv6 address; without names the network is its short id", () => {
    const s = fixtureState();
    const e = s.endpoints.get(E1);
    if (!e) throw new Error('fixture');
    s.apply([{ op: 'endpoint.put', endpoint: { ...e, ports: [{ proto: 'tcp', containerPort: 80, hostIp: '::1', hostPort: 9090 }] } }]);
    const [p] = portsView(s, NO_NAMES).filter((x) => x.hostPort === 9090);
    expect(p).toEqual({
      hostIp: '::1',
      hostPort: 9090,
      proto: 'tcp',
      containerIp: 'fd00:201::10',
      containerPort: 80,
      network: DUAL.slice(0, 12),
      endpoint: E1,
    });
  });

  it('ports of the same number are ordered by protocol', () => {
    const s = fixtureState();
    const e = s.endpoints.get(E3);
    if (!e) throw new Error('fixture');
    s.apply([
      {
        op: 'endpoint.put',
        endpoint: {
          ...e,
          ports: [
            { proto: 'udp', containerPort: 1, hostIp: '', hostPort: 7000 },
            { proto: 'sctp', containerPort: 1, hostIp: '', hostPort: 7000 },
            { proto: 'tcp', containerPort: 1, hostIp: '', hostPort: 7000 },
          ],
        },
      },
    ]);
    expect(
      portsView(s, NO_NAMES)
        .filter((p) => p.hostPort === 7000)
        .map((p) => p.proto),
    ).toEqual(['sctp', 'tcp', 'udp']);
  });
});
