/**
 * Published ports as pure decisions (src/driver/ports.ts): parsing dockerd's portmap, choosing
 * host ports (exact, ranges, ephemeral), conflicts with other endpoints and with the host's
 * listeners, the plan (held sockets, map elements, conntrack after the answer), the per-request
 * limit, and that the work is linear in the bindings (counted, not timed).
 */
import { describe, expect, it } from 'vitest';
import type { HostPorts, Proto } from '../../../src/decision.js';
import { createEndpoint } from '../../../src/driver/endpoint.js';
import { createNetwork } from '../../../src/driver/network.js';
import {
  MAX_BINDINGS,
  type RequestedBinding,
  parsePortMap,
  portMapInfo,
  programExternalConnectivity,
  resolveBindings,
  revokeExternalConnectivity,
} from '../../../src/driver/ports.js';
import { type EndpointRecord, State } from '../../../src/driver/state.js';
import { type PortElement, TABLE, portElementCommands, reverse } from '../../../src/plan/nft.js';
import { nftScript } from '../../../src/plan/nft-text.js';

const portElementsScript = (op: 'add' | 'delete', els: readonly PortElement[]): string => nftScript(TABLE, portElementCommands(op, els));
import { heldSockets, portElements, unpublishSteps } from '../../../src/plan/ports.js';
import { type HostOp, renderPlan } from '../../../src/plan/step.js';
import { errorOf, hexId } from '../support.js';

const NOW = '2024-06-11T10:00:00.000Z';
const DUAL = hexId(0xd0a1);
const V4 = hexId(0x4444);
const INTERNAL = hexId(0x1417);
const PORTMAP = 'com.docker.network.portmap';

function world(): State {
  const s = new State();
  const nets = [
    {
      NetworkID: DUAL,
      Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'x', Gateway: '10.160.0.1/16', Pool: '10.160.0.0/16' }],
      IPv6Data: [{ AddressSpace: 'x', Gateway: 'fd00:160::1/64', Pool: 'fd00:160::/64' }],
    },
    {
      NetworkID: V4,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'x', Gateway: '10.161.0.1/16', Pool: '10.161.0.0/16' }],
      IPv6Data: [],
    },
    {
      NetworkID: INTERNAL,
      Options: { 'com.docker.network.generic': {}, 'com.docker.network.internal': true },
      IPv4Data: [{ AddressSpace: 'x', Gateway: '10.162.0.1/16', Pool: '10.162.0.0/16' }],
      IPv6Data: [],
    },
  ];
  for (const n of nets) s.apply(createNetwork(s, n, 'absent', NOW).changes);
  return s;
}

let seq = 0x100;
function endpoint(s: State, net: string, v6 = false): EndpointRecord {
  const id = hexId(++seq);
  const third = net === DUAL ? 160 : net === V4 ? 161 : 162;
  const Interface = {
    Address: `10.${third}.${seq >> 8}.${seq & 255}/16`,
    AddressIPv6: v6 ? `fd00:160::${seq.toString(16)}/64` : '',
    MacAddress: '',
  };
  s.apply(createEndpoint(s, { NetworkID: net, EndpointID: id, Interface, Options: {} }).changes);
  return s.endpoints.get(id) as EndpointRecord;
}

/** A host where `listeners` listen ("tcp/8080" → addresses); counts every lookup. */
function host(listeners: Record<string, string[]> = {}, ephemeral: [number, number] = [49152, 60999]): HostPorts & { lookups: number } {
  const h = {
    lookups: 0,
    ephemeral,
    listening(proto: Proto, port: number): readonly string[] {
      h.lookups++;
      return listeners[`${proto}/${port}`] ?? [];
    },
  };
  return h;
}

const b = (proto: Proto, port: number, hostPort: number, o: { hostIp?: string; hostPortEnd?: number } = {}): RequestedBinding => ({
  proto,
  containerPort: port,
  hostIp: o.hostIp ?? '',
  hostPort,
  hostPortEnd: o.hostPortEnd ?? hostPort,
});
const wire = (r: RequestedBinding): Record<string, unknown> => ({
  Proto: { tcp: 6, udp: 17, sctp: 132 }[r.proto],
  IP: '',
  Port: r.containerPort,
  HostIP: r.hostIp,
  HostPort: r.hostPort,
  HostPortEnd: r.hostPortEnd,
});

const refusal = errorOf; // the PluginError a call throws (test/unit/support.ts)

/** Publishes `ports` for `ep` and applies the decision, as the orchestrator does. */
function publish(
  s: State,
  ep: EndpointRecord,
  ports: RequestedBinding[],
  h: HostPorts = host(),
): ReturnType<typeof programExternalConnectivity> {
  const d = programExternalConnectivity(s, { NetworkID: ep.networkId, EndpointID: ep.id, Options: { [PORTMAP]: ports.map(wire) } }, h);
  s.apply(d.changes);
  return d;
}

describe('parsePortMap', () => {
  it("decodes dockerd's bindings: protocols by number, HostPortEnd 0 as HostPort, missing HostIP as all addresses", () => {
    expect(
      parsePortMap({
        [PORTMAP]: [
          { Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 0 },
          { Proto: 17, Port: 53, HostIP: '127.0.0.1', HostPort: 0 },
          { Proto: 132, Port: 9, HostPort: 9000, HostPortEnd: 9010 },
        ],
      }),
    ).toEqual([
      { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080, hostPortEnd: 8080 },
      { proto: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPort: 0, hostPortEnd: 0 },
      { proto: 'sctp', containerPort: 9, hostIp: '', hostPort: 9000, hostPortEnd: 9010 },
    ]);
    expect(parsePortMap({})).toEqual([]);
    expect(parsePortMap(null)).toEqual([]);
  });

  it('refuses bad bindings naming the field', () => {
    const cases: [unknown, string][] = [
      [{ Proto: 1, Port: 80 }, 'Options.com.docker.network.portmap[0].Proto'],
      [{ Proto: 6, Port: 0 }, 'Options.com.docker.network.portmap[0].Port'],
      [{ Proto: 6, Port: 80, HostPort: 70000 }, 'Options.com.docker.network.portmap[0].HostPort'],
      [{ Proto: 6, Port: 80, HostPort: 90, HostPortEnd: 80 }, 'Options.com.docker.network.portmap[0].HostPortEnd'],
      [{ Proto: 6, Port: 80, HostIP: 'localhost' }, 'Options.com.docker.network.portmap[0].HostIP'],
      ['80/tcp', 'Options.com.docker.network.portmap[0]'],
    ];
    for (const [raw, field] of cases) {
      const err = refusal(() => parsePortMap({ [PORTMAP]: [raw] }));
      expect(err.code, field).toBe('INVALID_REQUEST');
      expect(err.message.startsWith(`${field}:`), err.message).toBe(true);
    }
    expect(refusal(() => parsePortMap({ [PORTMAP]: 'x' })).message).toMatch(/^Options\.com\.docker\.network\.portmap: must be an array/);
  });

  it(`one request publishes at most ${MAX_BINDINGS} bindings: beyond, an error naming the field and the limit, before any binding is looked at`, () => {
    const many = Array.from({ length: MAX_BINDINGS + 1 }, () => 'not even a binding');
    const err = refusal(() => parsePortMap({ [PORTMAP]: many }));
    expect(err.code).toBe('INVALID_REQUEST');
    expect(err.message).toBe(
      `Options.com.docker.network.portmap: has ${MAX_BINDINGS + 1} bindings, more than the ${MAX_BINDINGS} one request may publish`,
    );
    expect(
      parsePortMap({ [PORTMAP]: Array.from({ length: MAX_BINDINGS }, (_, i) => ({ Proto: 17, Port: 1 + (i % 60000), HostPort: 0 })) }),
    ).toHaveLength(MAX_BINDINGS);
  });
});

describe('resolveBindings', () => {
  it('an exact port is taken as asked; HostIP "" stays all addresses; the default binding address applies to bindings without one', () => {
    const s = world();
    const ep = endpoint(s, DUAL, true);
    expect(resolveBindings(s, ep, [b('tcp', 80, 8080)], '0.0.0.0', host())).toEqual([
      { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080 },
    ]);
    expect(resolveBindings(s, ep, [b('tcp', 80, 8080)], '127.0.0.1', host())).toEqual([
      { proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPort: 8080 },
    ]);
  });

  it('a range takes the first port that no endpoint publishes and no process listens on', () => {
    const s = world();
    const other = endpoint(s, V4);
    publish(s, other, [b('tcp', 80, 8001)]);
    const ep = endpoint(s, V4);
    const h = host({ 'tcp/8000': ['0.0.0.0'] });
    expect(resolveBindings(s, ep, [b('tcp', 80, 8000, { hostPortEnd: 8005 })], '0.0.0.0', h).map((x) => x.hostPort)).toEqual([8002]);
    // Another protocol of the same ports is free.
    expect(resolveBindings(s, ep, [b('udp', 80, 8000, { hostPortEnd: 8005 })], '0.0.0.0', host()).map((x) => x.hostPort)).toEqual([8000]);
  });

  it('a range or HostPort 0 skips ports a client connection uses (their bind would fail); an exact port is left to the bind', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const h: HostPorts = {
      listening: () => [],
      busy: (proto, port) => proto === 'tcp' && (port === 40000 || port === 8000),
      ephemeral: [40000, 40009],
    };
    expect(
      resolveBindings(s, ep, [b('tcp', 80, 0), b('tcp', 81, 8000, { hostPortEnd: 8005 }), b('udp', 82, 0)], '0.0.0.0', h).map(
        (x) => x.hostPort,
      ),
    ).toEqual([40001, 8001, 40000]);
    expect(resolveBindings(s, ep, [b('tcp', 80, 8000)], '0.0.0.0', h).map((x) => x.hostPort)).toEqual([8000]);
  });

  it('HostPort 0 takes free ports of the ephemeral range, one after the other; an exhausted range is a CONFLICT naming it', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const h = host({ 'tcp/40000': ['0.0.0.0'] }, [40000, 40003]);
    expect(resolveBindings(s, ep, [b('tcp', 80, 0), b('tcp', 81, 0), b('tcp', 82, 0)], '0.0.0.0', h).map((x) => x.hostPort)).toEqual([
      40001, 40002, 40003,
    ]);
    const err = refusal(() => resolveBindings(s, ep, [b('tcp', 80, 0), b('tcp', 81, 0), b('tcp', 82, 0), b('tcp', 83, 0)], '0.0.0.0', h));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toBe('no free port in the ephemeral range 40000-40003/tcp');
  });

  it('conflicts: another endpoint, another binding of the same request, a listener; each named', () => {
    const s = world();
    const other = endpoint(s, V4);
    publish(s, other, [b('tcp', 80, 8080)]);
    const ep = endpoint(s, V4);
    expect(refusal(() => resolveBindings(s, ep, [b('tcp', 80, 8080)], '0.0.0.0', host())).message).toBe(
      `host port 8080/tcp is already published by mynet endpoint ${other.id.slice(0, 12)}`,
    );
    expect(refusal(() => resolveBindings(s, ep, [b('tcp', 80, 8090), b('tcp', 81, 8090)], '0.0.0.0', host())).message).toBe(
      'host port 8090/tcp is already published by another binding of this container',
    );
    expect(refusal(() => resolveBindings(s, ep, [b('udp', 80, 8088)], '0.0.0.0', host({ 'udp/8088': ['0.0.0.0'] }))).message).toBe(
      'host port 8088/udp is in use by a process listening on 0.0.0.0:8088',
    );
    // A listener on [::] (dual-stack) takes IPv4 too; an IPv4-only listener on one address clashes with "all addresses".
    expect(
      refusal(() => resolveBindings(s, ep, [b('tcp', 80, 8086, { hostIp: '127.0.0.1' })], '0.0.0.0', host({ 'tcp/8086': ['::'] }))).message,
    ).toBe('host port 127.0.0.1:8086/tcp is in use by a process listening on [::]:8086');
    expect(refusal(() => resolveBindings(s, ep, [b('tcp', 80, 8087)], '0.0.0.0', host({ 'tcp/8087': ['127.0.0.1'] }))).code).toBe(
      'CONFLICT',
    );
    // Different addresses of the same port do not clash.
    expect(
      resolveBindings(s, ep, [b('tcp', 80, 8087, { hostIp: '127.0.0.2' })], '0.0.0.0', host({ 'tcp/8087': ['127.0.0.1'] })),
    ).toHaveLength(1);
  });

  it('a binding of one family needs a container address of that family', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const err = refusal(() => resolveBindings(s, ep, [b('tcp', 80, 8080, { hostIp: '::1' })], '0.0.0.0', host()));
    expect(err.code).toBe('INVALID_REQUEST');
    expect(err.message).toBe('Options.com.docker.network.portmap: [::1]:8080/tcp: the container has no IPv6 address on this network');
  });

  it('issue 15.8: `-p 8000-8010:80 -p 8000:81` places the exact port first and the range around it, answering in the order asked', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const got = resolveBindings(s, ep, [b('tcp', 80, 8000, { hostPortEnd: 8010 }), b('tcp', 81, 8000)], '0.0.0.0', host());
    expect(got).toEqual([
      { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8001 },
      { proto: 'tcp', containerPort: 81, hostIp: '', hostPort: 8000 },
    ]);
    // The same with the range after the exact port, and two ranges around two exact ports.
    expect(
      resolveBindings(s, ep, [b('tcp', 81, 8000), b('tcp', 80, 8000, { hostPortEnd: 8010 })], '0.0.0.0', host()).map((x) => x.hostPort),
    ).toEqual([8000, 8001]);
    expect(
      resolveBindings(
        s,
        ep,
        [b('tcp', 1, 8000, { hostPortEnd: 8003 }), b('tcp', 2, 8000, { hostPortEnd: 8003 }), b('tcp', 3, 8001), b('tcp', 4, 8000)],
        '0.0.0.0',
        host(),
      ).map((x) => x.hostPort),
    ).toEqual([8002, 8003, 8001, 8000]);
  });
});

describe('linear in the bindings (operation counts)', () => {
  it('20 000 ephemeral bindings with the first 1 000 ports of the range taken by listeners: each port is looked up once', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const listeners: Record<string, string[]> = {};
    for (let p = 30000; p < 31000; p++) listeners[`udp/${p}`] = ['0.0.0.0'];
    const h = host(listeners, [30000, 60999]);
    const got = resolveBindings(
      s,
      ep,
      Array.from({ length: 20000 }, (_, i) => b('udp', 1 + i, 0)),
      '0.0.0.0',
      h,
    );
    expect(got[0]?.hostPort).toBe(31000);
    expect(got[19999]?.hostPort).toBe(50999);
    expect(new Set(got.map((x) => x.hostPort)).size).toBe(20000);
    // 1 000 listener ports once, then one free port per binding. Scanning each binding's range
    // from its start (as before) looked the 1 000 up again for every binding: 20 000 000 lookups.
    expect(h.lookups).toBe(21000);
  });

  it('20 000 exact ports beside 20 000 published by another endpoint: one lookup per binding', () => {
    const s = world();
    const other = endpoint(s, V4);
    publish(
      s,
      other,
      Array.from({ length: 20000 }, (_, i) => b('tcp', 80, 10000 + i)),
    );
    const ep = endpoint(s, V4);
    const h = host();
    const got = resolveBindings(
      s,
      ep,
      Array.from({ length: 20000 }, (_, i) => b('tcp', 80, 30000 + i)),
      '0.0.0.0',
      h,
    );
    expect(got).toHaveLength(20000);
    expect(h.lookups).toBe(20000);
    expect(
      refusal(() => resolveBindings(s, ep, [b('tcp', 80, 30001), b('tcp', 80, 30002), b('tcp', 80, 10000)], '0.0.0.0', host())).message,
    ).toBe(`host port 10000/tcp is already published by mynet endpoint ${other.id.slice(0, 12)}`);
  });

  it('the nft script of 20 000 elements has one add per map, every element once', () => {
    const s = world();
    const ep = endpoint(s, DUAL, true);
    const ports = Array.from({ length: 10000 }, (_, i) => ({ proto: 'tcp' as const, containerPort: 80, hostIp: '', hostPort: 10000 + i }));
    const els = portElements(ep, ports);
    expect(els).toHaveLength(20000);
    const script = portElementsScript('add', els);
    const lines = script.split('\n');
    expect(lines.map((l) => l.split(' {')[0])).toEqual(['add element inet mynet pub4any', 'add element inet mynet pub6any']);
    expect(script.split(' : ').length - 1).toBe(20000);
    expect(lines[0]).toContain('tcp . 19999 : ');
  });
});

describe('programExternalConnectivity', () => {
  const opsOf = (plan: readonly { run: HostOp }[]): string[] => plan.map((st) => st.run.kind);

  it('holds the sockets first (undo: release), then adds the elements; UDP ports have their flows forgotten once each, after the answer', () => {
    const s = world();
    const ep = endpoint(s, DUAL, true);
    const d = publish(s, ep, [
      b('tcp', 80, 8080),
      b('udp', 53, 5353),
      b('udp', 54, 5355, { hostIp: '127.0.0.1' }),
      b('udp', 55, 5354, { hostIp: '::1' }),
    ]);
    expect(opsOf(d.plan)).toEqual(['port-hold', 'nft', 'conntrack-flush-ports']);
    expect(d.plan[0]?.undo?.kind).toBe('port-release');
    expect(d.plan[2]?.later).toBe(true);
    expect(renderPlan(d.plan)).toBe(
      [
        `# hold 6 host port socket(s) of ${ep.id.slice(0, 12)}`,
        'hold tcp 0.0.0.0:8080, tcp [::]:8080, udp 0.0.0.0:5353, udp [::]:5353, udp 127.0.0.1:5355, udp [::1]:5354  [held ok]',
        '  undo: release tcp 0.0.0.0:8080, tcp [::]:8080, udp 0.0.0.0:5353, udp [::]:5353, udp 127.0.0.1:5355, udp [::1]:5354  [not held ok]',
        `# publish 4 port(s) of ${ep.id.slice(0, 12)}`,
        'nft -f - <<',
        `add element inet mynet pub4any { tcp . 8080 : ${ep.address?.split('/')[0]} . 80, udp . 5353 : ${ep.address?.split('/')[0]} . 53 }`,
        `add element inet mynet pub6any { tcp . 8080 : ${ep.addressV6?.split('/')[0]} . 80, udp . 5353 : ${ep.addressV6?.split('/')[0]} . 53 }`,
        `add element inet mynet pub4 { 127.0.0.1 . udp . 5355 : ${ep.address?.split('/')[0]} . 54 }`,
        `add element inet mynet pub6 { ::1 . udp . 5354 : ${ep.addressV6?.split('/')[0]} . 55 }`,
        '>>',
        '  undo: nft -f - <<',
        // The undo is the reverse of the publish: the same elements destroyed, last map first.
        ...nftScript(TABLE, reverse(portElementCommands('add', portElements(ep, s.endpoints.get(ep.id)?.ports ?? [])))).split('\n'),
        '>>  [no table inet mynet: done]',
        '# forget flows to 3 newly published UDP/SCTP host port(s)  [after the answer]',
        'conntrack -D --orig-port-dst -p udp 5353,5355,5354  [ipv4 and ipv6; none ok]',
      ].join('\n'),
    );
    expect(portMapInfo(s.endpoints.get(ep.id) as EndpointRecord).map((x) => x.HostPort)).toEqual([8080, 5353, 5355, 5354]);
  });

  it('a 10 001-port UDP range: one conntrack step for all the ports, after the answer', () => {
    const s = world();
    const ep = endpoint(s, V4);
    const d = publish(
      s,
      ep,
      Array.from({ length: 10001 }, (_, i) => b('udp', 10000 + i, 10000 + i)),
    );
    const flush = d.plan.filter((st) => st.run.kind === 'conntrack-flush-ports');
    expect(flush).toHaveLength(1);
    expect(flush[0]?.later).toBe(true);
    expect(flush[0]?.run).toEqual({ kind: 'conntrack-flush-ports', udp: Array.from({ length: 10001 }, (_, i) => 10000 + i), sctp: [] });
  });

  it('internal networks publish nothing, nor does a repeat of a call in force; TCP only has no conntrack step', () => {
    const s = world();
    const inner = endpoint(s, INTERNAL);
    expect(publish(s, inner, [b('tcp', 80, 8080)]).plan).toEqual([]);
    const ep = endpoint(s, V4);
    expect(opsOf(publish(s, ep, [b('tcp', 80, 8080)]).plan)).toEqual(['port-hold', 'nft']);
    expect(publish(s, ep, [b('tcp', 80, 9090)]).plan).toEqual([]);
    expect(s.endpoints.get(ep.id)?.ports.map((x) => x.hostPort)).toEqual([8080]);
  });

  it('an unknown endpoint is ENDPOINT_NOT_FOUND', () => {
    const s = world();
    expect(refusal(() => programExternalConnectivity(s, { NetworkID: V4, EndpointID: hexId(0xdead), Options: {} }, host())).code).toBe(
      'ENDPOINT_NOT_FOUND',
    );
  });
});

describe('unpublishing', () => {
  it('Revoke removes the elements, releases the sockets before the answer, and forgets the flows of the address after it', () => {
    const s = world();
    const ep = endpoint(s, DUAL, true);
    publish(s, ep, [b('tcp', 80, 8080, { hostIp: '127.0.0.1' })]);
    const d = revokeExternalConnectivity(s, { NetworkID: DUAL, EndpointID: ep.id });
    expect(d.plan.map((st) => [st.run.kind, st.later === true])).toEqual([
      ['nft', false],
      ['port-release', false],
      ['conntrack-flush', true],
      ['conntrack-flush', true],
    ]);
    expect(d.plan[1]?.run).toEqual({
      kind: 'port-release',
      sockets: [{ proto: 'tcp', address: '127.0.0.1', port: 8080, hostIp: '127.0.0.1' }],
    });
    s.apply(d.changes);
    expect(revokeExternalConnectivity(s, { NetworkID: DUAL, EndpointID: ep.id }).plan).toEqual([]);
    expect(unpublishSteps(s.endpoints.get(ep.id) as EndpointRecord)).toEqual([]);
  });

  it('held sockets follow the elements: all addresses of a family as 0.0.0.0 / [::], only the families the container has', () => {
    const s = world();
    const v4 = endpoint(s, V4);
    const dual = endpoint(s, DUAL, true);
    const ports = [
      { proto: 'udp' as const, containerPort: 53, hostIp: '', hostPort: 53 },
      { proto: 'tcp' as const, containerPort: 80, hostIp: '::', hostPort: 80 },
    ];
    expect(heldSockets(v4, ports)).toEqual([{ proto: 'udp', address: '0.0.0.0', port: 53, hostIp: '' }]);
    expect(heldSockets(dual, ports)).toEqual([
      { proto: 'udp', address: '0.0.0.0', port: 53, hostIp: '' },
      { proto: 'udp', address: '::', port: 53, hostIp: '' },
      { proto: 'tcp', address: '::', port: 80, hostIp: '::' },
    ]);
  });
});
