import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../../src/http/routes.js';
import { type SchemaName, loadSchemas, validate } from '../../../src/protocol/schemas.js';
import { DOCKERD_FIXTURE, errorOf } from '../support.js';

interface FixtureLine {
  path: string;
  accept: string;
  contentType: string | null;
  body: Record<string, unknown> | null;
}
const FIXTURE = DOCKERD_FIXTURE;
const fixture: FixtureLine[] = readFileSync(FIXTURE, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as FixtureLine);

const schemaOf = (path: string): SchemaName => {
  const r = routes.find((x) => x.path === path);
  if (!r) throw new Error(`no route for ${path}`);
  return r.schema;
};

beforeAll(() => loadSchemas());

const NID = 'c38af9122a9a1c8bf8eeb6ece822e1bb24d7013aa212796ca4e1f1332a0bd1df';
const EID = 'eaa9b94eff48d101a249b461e493f6a08e25aead22365c6a3a8dab89d7a9574e';

/** A fixture-shaped body for every schema (for schemas the recording has no request for). */
const samples: Record<SchemaName, unknown> = {
  none: {},
  createNetwork: {
    NetworkID: NID,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'x', Pool: '10.1.0.0/24', Gateway: '10.1.0.1/24', AuxAddresses: { a: '10.1.0.5/24' } }],
    IPv6Data: [],
  },
  networkOnly: { NetworkID: NID },
  createEndpoint: { NetworkID: NID, EndpointID: EID, Interface: { Address: '10.1.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} },
  join: { NetworkID: NID, EndpointID: EID, SandboxKey: '/var/run/docker/netns/1a0433bfbe3f', Options: {} },
  netEp: { NetworkID: NID, EndpointID: EID },
  programExternalConnectivity: { NetworkID: NID, EndpointID: EID, Options: { 'com.docker.network.portmap': [] } },
  discover: { DiscoveryType: 1, DiscoveryData: { Address: '10.0.0.1', BindAddress: '0.0.0.0', Self: true } },
  requestPool: { AddressSpace: 'mylocal', Pool: '', SubPool: '', Options: {}, V6: false },
  poolOnly: { PoolID: 'pool-1' },
  requestAddress: { PoolID: 'pool-1', Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } },
  releaseAddress: { PoolID: 'pool-1', Address: '10.1.0.2' },
};

describe('schemas accept what dockerd sends', () => {
  it('every recorded dockerd 20.10 request body validates, as recorded and with extra unknown fields', () => {
    expect(fixture.length).toBeGreaterThan(50);
    for (const [i, line] of fixture.entries()) {
      const name = schemaOf(line.path);
      const body = line.body ?? {};
      expect(() => validate(name, body), `line ${i + 1} ${line.path}`).not.toThrow();
      const extended = { ...body, FutureField: { nested: [1, 2] }, AnotherOne: 'x' };
      expect(() => validate(name, extended), `line ${i + 1} ${line.path} with extra fields`).not.toThrow();
    }
  });

  it('the recording covers these schemas', () => {
    const covered = new Set(fixture.map((l) => schemaOf(l.path)));
    expect([...covered].sort()).toEqual(
      [
        'createEndpoint',
        'createNetwork',
        'join',
        'netEp',
        'networkOnly',
        'none',
        'poolOnly',
        'programExternalConnectivity',
        'releaseAddress',
        'requestAddress',
        'requestPool',
      ].sort(),
    );
  });

  for (const name of Object.keys(samples) as SchemaName[]) {
    it(`${name}: a sample body, with unknown fields at every level, validates`, () => {
      expect(() => validate(name, samples[name])).not.toThrow();
      const sample = samples[name] as Record<string, unknown>;
      const extended: Record<string, unknown> = { ...sample, Unknown: true };
      for (const [k, v] of Object.entries(sample)) {
        if (typeof v === 'object' && v !== null && !Array.isArray(v) && k !== 'Options') extended[k] = { ...v, Unknown: 'x' };
      }
      expect(() => validate(name, extended)).not.toThrow();
    });
  }

  it('nullable fields accept null as dockerd sends them', () => {
    expect(() => validate('createNetwork', { NetworkID: NID, Options: null, IPv4Data: null, IPv6Data: null })).not.toThrow();
    expect(() => validate('createEndpoint', { NetworkID: NID, EndpointID: EID, Interface: null, Options: null })).not.toThrow();
    expect(() => validate('requestPool', { Options: null })).not.toThrow();
    expect(() => validate('requestAddress', { PoolID: 'p', Options: null })).not.toThrow();
    expect(() => validate('none', null)).not.toThrow();
  });
});

describe('schemas refuse wrong types naming the field', () => {
  const cases: [SchemaName, unknown, string][] = [
    ['createNetwork', { NetworkID: 5 }, 'NetworkID'],
    ['createNetwork', {}, 'NetworkID'],
    ['createNetwork', { NetworkID: NID, Options: 'x' }, 'Options'],
    ['createNetwork', { NetworkID: NID, IPv4Data: {} }, 'IPv4Data'],
    ['createNetwork', { NetworkID: NID, IPv4Data: [{ Pool: 10 }] }, 'IPv4Data.0.Pool'],
    ['createNetwork', { NetworkID: NID, IPv4Data: [{}] }, 'IPv4Data.0.Pool'],
    ['createNetwork', { NetworkID: NID, IPv6Data: [{ Pool: 'fd00::/64', Gateway: false }] }, 'IPv6Data.0.Gateway'],
    ['createNetwork', { NetworkID: NID, IPv4Data: [{ Pool: '10.0.0.0/8', AuxAddresses: { h: 1 } }] }, 'IPv4Data.0.AuxAddresses.h'],
    ['createNetwork', { NetworkID: 'x'.repeat(200) }, 'NetworkID'],
    ['networkOnly', { NetworkID: null }, 'NetworkID'],
    ['createEndpoint', { NetworkID: NID }, 'EndpointID'],
    ['createEndpoint', { NetworkID: NID, EndpointID: EID, Interface: 'eth0' }, 'Interface'],
    ['createEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: 5 } }, 'Interface.Address'],
    ['createEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { MacAddress: ['x'] } }, 'Interface.MacAddress'],
    ['createEndpoint', { NetworkID: NID, EndpointID: EID, Options: [] }, 'Options'],
    ['join', { NetworkID: NID, EndpointID: EID, SandboxKey: 7 }, 'SandboxKey'],
    ['netEp', { NetworkID: NID, EndpointID: 7 }, 'EndpointID'],
    ['programExternalConnectivity', { NetworkID: NID, EndpointID: EID, Options: 1 }, 'Options'],
    ['discover', { DiscoveryType: 'one' }, 'DiscoveryType'],
    ['requestPool', { V6: 'true' }, 'V6'],
    ['requestPool', { Pool: 10 }, 'Pool'],
    ['requestPool', { SubPool: {} }, 'SubPool'],
    ['requestPool', { AddressSpace: 1 }, 'AddressSpace'],
    ['requestPool', { Options: { foo: 1 } }, 'Options.foo'],
    ['poolOnly', {}, 'PoolID'],
    ['poolOnly', { PoolID: 1 }, 'PoolID'],
    ['requestAddress', { PoolID: 'p', Address: 1 }, 'Address'],
    ['requestAddress', { PoolID: 'p', Options: { RequestAddressType: true } }, 'Options.RequestAddressType'],
    ['requestAddress', { Address: '' }, 'PoolID'],
    ['releaseAddress', { PoolID: 'p' }, 'Address'],
    ['releaseAddress', { PoolID: 'p', Address: null }, 'Address'],
  ];
  for (const [name, body, field] of cases) {
    it(`${name} ${JSON.stringify(body).slice(0, 70)} → ${field}`, () => {
      const e = errorOf(() => validate(name, body));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message.startsWith(`${field}: `), e.message).toBe(true);
    });
  }

  it('a body that is not an object is refused as "body"', () => {
    for (const body of ['x', 3, [], true]) {
      const e = errorOf(() => validate('createNetwork', body));
      expect(e.message).toMatch(/^body: /);
    }
    expect(errorOf(() => validate('none', 'x')).message).toMatch(/^body: /);
  });

  it('none (checked without ajv, so the handshake never waits for it): an object or null, as the schema says', () => {
    for (const body of [{}, null, { Extra: 1 }]) expect(validate('none', body)).toBe(body);
    for (const body of ['x', 3, [], true]) expect(errorOf(() => validate('none', body)).message).toBe('body: must be object,null');
  });

  it('says why: required / type', () => {
    expect(errorOf(() => validate('poolOnly', {})).message).toBe('PoolID: is required');
    expect(errorOf(() => validate('requestPool', { V6: 'true' })).message).toBe('V6: must be boolean');
  });
});
