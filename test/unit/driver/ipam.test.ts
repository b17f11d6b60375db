import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/decision.js';
import { type IpamEnv, LOCAL_SPACE, releaseAddress, releasePool, requestAddress, requestPool } from '../../../src/driver/ipam.js';
import { parseDefaultPools } from '../../../src/ip/pools.js';
import { State } from '../../../src/driver/state.js';
import { parseCidr, type Cidr } from '../../../src/ip/cidr.js';
import { parseIp } from '../../../src/ip/address.js';
import { errorOf, silentLog } from '../support.js';
import { testPlugin } from '../../helpers/test-plugin.js';

const cidr = (s: string): Cidr => {
  const r = parseCidr(s);
  if (!r.ok) throw new Error(r.why);
  return r.cidr;
};
const env = (pools = '10.200.0.0/16/24,fd42:4d4e::/48/64', host: string[] = []): IpamEnv => ({
  defaultPools: parseDefaultPools(pools),
  hostPrefixes: host.map(cidr),
});
/** Applies a decision's changes, as the orchestrator does after a successful commit. */
function take<R>(state: State, d: Decision<R>): R {
  state.apply(d.changes);
  return d.response;
}
const pool = (state: State, req: Parameters<typeof requestPool>[1], e = env()): string => take(state, requestPool(state, req, e)).PoolID;
const addr = (state: State, PoolID: string, Address = '', gateway = false): string =>
  take(state, requestAddress(state, { PoolID, Address, Options: gateway ? { RequestAddressType: 'com.docker.network.gateway' } : null }))
    .Address;

describe('requestPool with a Pool', () => {
  it('returns the canonical CIDR and records the pool', () => {
    const s = new State();
    const d = requestPool(s, { AddressSpace: 'mylocal', Pool: '10.150.3.7/16', SubPool: '', Options: { foo: 'bar' }, V6: false }, env());
    expect(d.response.Pool).toBe('10.150.0.0/16');
    expect(d.response.Data).toEqual({});
    expect(d.response.PoolID).toContain('10.150.0.0/16');
    expect(d.changes).toEqual([
      { op: 'pool.put', pool: { id: d.response.PoolID, space: 'mylocal', pool: '10.150.0.0/16', family: 4, options: { foo: 'bar' } } },
    ]);
    take(s, d);
    expect(s.pools.get(d.response.PoolID)?.record.pool).toBe('10.150.0.0/16');
  });

  it('canonicalises IPv6', () => {
    const s = new State();
    const r = requestPool(s, { Pool: 'FD00:0150:0::1/64', V6: true }, env()).response;
    expect(r.Pool).toBe('fd00:150::/64');
  });

  it('uses the local default space when none is given', () => {
    const s = new State();
    const d = requestPool(s, { Pool: '10.9.0.0/24' }, env());
    expect(d.changes[0]).toMatchObject({ op: 'pool.put', pool: { space: LOCAL_SPACE } });
  });

  it('accepts a SubPool inside the Pool and records it canonically', () => {
    const s = new State();
    const d = requestPool(s, { Pool: '10.150.0.0/16', SubPool: '10.150.5.9/24' }, env());
    expect(d.changes[0]).toMatchObject({ op: 'pool.put', pool: { pool: '10.150.0.0/16', subPool: '10.150.5.0/24' } });
    expect(d.response.Pool).toBe('10.150.0.0/16');
  });

  it('refuses a SubPool outside the Pool, or of the other family', () => {
    const s = new State();
    for (const SubPool of ['10.151.5.0/24', '10.0.0.0/8', 'fd00::/64']) {
      const e = errorOf(() => requestPool(s, { Pool: '10.150.0.0/16', SubPool }, env()));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message).toMatch(/^SubPool: /);
      expect(e.message).toContain('not inside Pool 10.150.0.0/16');
    }
    expect(errorOf(() => requestPool(s, { Pool: '10.150.0.0/16', SubPool: 'junk' }, env())).message).toMatch(/^SubPool: /);
  });

  it('refuses a family mismatch with V6', () => {
    const s = new State();
    const e1 = errorOf(() => requestPool(s, { Pool: '10.150.0.0/16', V6: true }, env()));
    expect(e1.code).toBe('INVALID_REQUEST');
    expect(e1.message).toMatch(/^Pool: 10\.150\.0\.0\/16 is IPv4 but V6 is true/);
    const e2 = errorOf(() => requestPool(s, { Pool: 'fd00::/64', V6: false }, env()));
    expect(e2.message).toMatch(/^Pool: fd00::\/64 is IPv6 but V6 is false/);
  });

  it('refuses a Pool that is not a CIDR', () => {
    const s = new State();
    for (const Pool of ['10.0.0.0', '10.0.0.0/33', 'banana']) {
      const e = errorOf(() => requestPool(s, { Pool }, env()));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message).toMatch(/^Pool: /);
    }
  });

  it('refuses overlap with a held pool, naming both CIDRs', () => {
    const s = new State();
    pool(s, { Pool: '10.150.0.0/16' });
    for (const [Pool, asked] of [
      ['10.150.7.0/24', '10.150.7.0/24'],
      ['10.0.0.0/8', '10.0.0.0/8'],
      ['10.150.0.1/16', '10.150.0.0/16'],
    ] as const) {
      const e = errorOf(() => requestPool(s, { Pool }, env()));
      expect(e.code).toBe('CONFLICT');
      expect(e.message).toContain(asked);
      expect(e.message).toContain('10.150.0.0/16');
    }
    // Neighbours and the other family are fine.
    expect(requestPool(s, { Pool: '10.151.0.0/16' }, env()).response.Pool).toBe('10.151.0.0/16');
    expect(requestPool(s, { Pool: 'fd00::/64', V6: true }, env()).response.Pool).toBe('fd00::/64');
  });

  it('a released pool can be requested again', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.150.0.0/16' });
    take(s, releasePool(s, id));
    expect(requestPool(s, { Pool: '10.150.0.0/16' }, env()).response.Pool).toBe('10.150.0.0/16');
  });
});

describe('requestPool without a Pool', () => {
  it('picks the first subnet of the default pools, per family', () => {
    const s = new State();
    expect(requestPool(s, { Pool: '' }, env()).response.Pool).toBe('10.200.0.0/24');
    expect(requestPool(s, { Pool: '', V6: true }, env()).response.Pool).toBe('fd42:4d4e::/64');
  });

  it('skips pools mynet holds', () => {
    const s = new State();
    pool(s, { Pool: '10.200.0.0/23' });
    pool(s, { Pool: '10.200.3.128/25' });
    expect(requestPool(s, {}, env()).response.Pool).toBe('10.200.2.0/24');
    pool(s, { Pool: '10.200.2.0/24' });
    expect(requestPool(s, {}, env()).response.Pool).toBe('10.200.4.0/24');
  });

  it('skips host prefixes, including ones wider than the default pool', () => {
    const s = new State();
    expect(requestPool(s, {}, env(undefined, ['10.200.0.0/22', '10.200.4.7/32', 'fd42:4d4e::/63'])).response.Pool).toBe('10.200.5.0/24');
    expect(requestPool(s, { V6: true }, env(undefined, ['10.200.0.0/22', 'fd42:4d4e::/63'])).response.Pool).toBe('fd42:4d4e:0:2::/64');
    // A host route covering the whole first base moves to the next base.
    const two = env('10.200.0.0/16/24,10.201.0.0/16/24', ['10.200.0.0/15']);
    expect(errorOf(() => requestPool(s, {}, two)).code).toBe('POOL_EXHAUSTED');
    const three = env('10.200.0.0/16/24,10.210.0.0/16/24', ['10.200.0.0/16']);
    expect(requestPool(s, {}, three).response.Pool).toBe('10.210.0.0/24');
  });

  it('returns a different pool every time, as dockerd re-requests while holding the earlier ones', () => {
    // dockerd's overlap loop: it keeps each lease and asks again (protocol.md §6).
    const s = new State();
    const seen = new Set<string>();
    const ids = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = take(s, requestPool(s, { AddressSpace: LOCAL_SPACE, Pool: '', SubPool: '', Options: {}, V6: i % 2 === 1 }, env()));
      expect(seen.has(r.Pool), `pool ${r.Pool} handed out twice`).toBe(false);
      seen.add(r.Pool);
      ids.add(r.PoolID);
    }
    expect(seen.size).toBe(100);
    expect(ids.size).toBe(100);
    expect(s.pools.size).toBe(100);
  });

  it('fails with POOL_EXHAUSTED once every subnet is taken', () => {
    const s = new State();
    const small = env('10.9.0.0/22/24');
    for (let i = 0; i < 4; i++) pool(s, {}, small);
    const e = errorOf(() => requestPool(s, {}, small));
    expect(e.code).toBe('POOL_EXHAUSTED');
    expect(e.message).toContain('10.9.0.0/22/24');
    expect(e.message).toContain('IPv4');
    // No IPv6 base configured at all.
    const e6 = errorOf(() => requestPool(s, { V6: true }, small));
    expect(e6.code).toBe('POOL_EXHAUSTED');
    expect(e6.message).toContain('none configured');
  });

  it('refuses a SubPool without a Pool', () => {
    const e = errorOf(() => requestPool(new State(), { Pool: '', SubPool: '10.0.0.0/24' }, env()));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toMatch(/^SubPool: /);
  });
});

describe('parseDefaultPools', () => {
  it('parses base/len/size lists', () => {
    expect(parseDefaultPools(' 10.200.0.0/16/24 , fd42::/48/64,')).toEqual([
      { base: cidr('10.200.0.0/16'), size: 24 },
      { base: cidr('fd42::/48'), size: 64 },
    ]);
  });
  it('refuses bad items naming the setting', () => {
    for (const t of ['10.200.0.0/16', '10.200.0.0/24/16', '10.200.0.0/16/33', 'x/16/24', 'fd42::/48/129']) {
      const e = errorOf(() => parseDefaultPools(t));
      expect(e.message).toMatch(/^MYNET_DEFAULT_POOLS: /);
    }
  });
});

describe('requestAddress', () => {
  it('the gateway gets the first free address, with the pool prefix length', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    expect(addr(s, id, '', true)).toBe('10.1.0.1/24');
    expect(addr(s, id)).toBe('10.1.0.2/24');
    const id6 = pool(s, { Pool: 'fd00:150::/64', V6: true });
    expect(addr(s, id6, '', true)).toBe('fd00:150::1/64');
  });

  it('a requested address inside the pool is given, with the pool prefix length', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.150.0.0/16', SubPool: '10.150.5.0/24' });
    expect(addr(s, id, '10.150.0.254', true)).toBe('10.150.0.254/16');
    expect(addr(s, id, '10.150.5.20')).toBe('10.150.5.20/16');
    expect(s.pools.get(id)?.taken.has(parseIp('10.150.5.20')?.value ?? -1n)).toBe(true);
  });

  it('refuses a requested address outside the pool or not an address', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    for (const a of ['10.1.1.1', 'fd00::1', '10.1.0', 'x']) {
      const e = errorOf(() => requestAddress(s, { PoolID: id, Address: a }));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message).toMatch(/^Address: /);
    }
  });

  it('refuses the network and broadcast addresses', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    expect(errorOf(() => requestAddress(s, { PoolID: id, Address: '10.1.0.0' })).message).toBe(
      'Address: 10.1.0.0 is the network address of 10.1.0.0/24',
    );
    expect(errorOf(() => requestAddress(s, { PoolID: id, Address: '10.1.0.255' })).message).toBe(
      'Address: 10.1.0.255 is the broadcast address of 10.1.0.0/24',
    );
    const id6 = pool(s, { Pool: 'fd00::/64', V6: true });
    expect(errorOf(() => requestAddress(s, { PoolID: id6, Address: 'fd00::' })).code).toBe('INVALID_REQUEST');
    // The last IPv6 address is an ordinary host address.
    expect(addr(s, id6, 'fd00::ffff:ffff:ffff:ffff')).toBe('fd00::ffff:ffff:ffff:ffff/64');
  });

  it('refuses an address already taken with CONFLICT', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    addr(s, id, '10.1.0.7');
    const e = errorOf(() => requestAddress(s, { PoolID: id, Address: '10.1.0.7' }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('10.1.0.7');
    // Automatic allocation steps around it.
    const gw = addr(s, id, '', true);
    expect(gw).toBe('10.1.0.1/24');
  });

  it('automatic addresses come from the SubPool', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.150.0.0/16', SubPool: '10.150.5.0/24' });
    addr(s, id, '10.150.0.254', true);
    expect(addr(s, id)).toBe('10.150.5.0/16'); // inside a /16, .5.0 is an ordinary host address
    expect(addr(s, id)).toBe('10.150.5.1/16');
    addr(s, id, '10.150.5.2');
    expect(addr(s, id)).toBe('10.150.5.3/16');
  });

  it('a SubPool at the edge of the pool does not hand out network or broadcast', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24', SubPool: '10.1.0.252/30' });
    expect(addr(s, id)).toBe('10.1.0.252/24');
    expect(addr(s, id)).toBe('10.1.0.253/24');
    expect(addr(s, id)).toBe('10.1.0.254/24');
    expect(errorOf(() => requestAddress(s, { PoolID: id })).code).toBe('POOL_EXHAUSTED');
    const low = pool(s, { Pool: '10.2.0.0/24', SubPool: '10.2.0.0/30' });
    expect(addr(s, low)).toBe('10.2.0.1/24');
  });

  it('an aux address outside the SubPool but inside the Pool is accepted', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.150.0.0/16', SubPool: '10.150.5.0/24' });
    expect(addr(s, id, '10.150.0.10')).toBe('10.150.0.10/16');
    expect(addr(s, id, '10.150.200.1')).toBe('10.150.200.1/16');
  });

  it('allocates serially: a released address is not reused at once', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    addr(s, id, '', true); // .1
    expect(addr(s, id)).toBe('10.1.0.2/24');
    expect(addr(s, id)).toBe('10.1.0.3/24');
    take(s, releaseAddress(s, { PoolID: id, Address: '10.1.0.2' }));
    expect(addr(s, id)).toBe('10.1.0.4/24');
    take(s, releaseAddress(s, { PoolID: id, Address: '10.1.0.4' }));
    expect(addr(s, id)).toBe('10.1.0.5/24');
  });

  it('wraps around to free addresses after reaching the end', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/29' }); // hosts .1-.6
    const got = Array.from({ length: 6 }, () => addr(s, id));
    expect(got).toEqual(['10.1.0.1/29', '10.1.0.2/29', '10.1.0.3/29', '10.1.0.4/29', '10.1.0.5/29', '10.1.0.6/29']);
    take(s, releaseAddress(s, { PoolID: id, Address: '10.1.0.3' }));
    expect(addr(s, id)).toBe('10.1.0.3/29');
    const e = errorOf(() => requestAddress(s, { PoolID: id }));
    expect(e.code).toBe('POOL_EXHAUSTED');
    expect(e.message).toContain('10.1.0.0/29');
  });

  it('exhausts small pools: /30, /31, /32, /127, /128', () => {
    const cases: [string, boolean, string[]][] = [
      ['10.1.0.0/30', false, ['10.1.0.1/30', '10.1.0.2/30']],
      ['10.1.0.0/31', false, ['10.1.0.0/31', '10.1.0.1/31']],
      ['10.1.0.9/32', false, ['10.1.0.9/32']],
      ['fd00::/127', true, ['fd00::/127', 'fd00::1/127']],
      ['fd00::7/128', true, ['fd00::7/128']],
      ['fd00::/126', true, ['fd00::1/126', 'fd00::2/126', 'fd00::3/126']],
    ];
    for (const [p, V6, expected] of cases) {
      const s = new State();
      const id = pool(s, { Pool: p, V6 });
      expect(
        expected.map(() => addr(s, id)),
        p,
      ).toEqual(expected);
      expect(errorOf(() => requestAddress(s, { PoolID: id })).code, p).toBe('POOL_EXHAUSTED');
    }
  });

  it('an unknown pool is POOL_NOT_FOUND', () => {
    const e = errorOf(() => requestAddress(new State(), { PoolID: 'nope' }));
    expect(e.code).toBe('POOL_NOT_FOUND');
    expect(e.message).toMatch(/^PoolID: /);
  });
});

describe('releases are idempotent', () => {
  it('releaseAddress of a free address, an unknown pool or twice is a no-op', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    addr(s, id, '10.1.0.5');
    const first = releaseAddress(s, { PoolID: id, Address: '10.1.0.5' });
    expect(first.changes).toEqual([{ op: 'address.free', pool: id, address: '10.1.0.5' }]);
    take(s, first);
    expect(releaseAddress(s, { PoolID: id, Address: '10.1.0.5' })).toEqual({ changes: [], response: {} });
    expect(releaseAddress(s, { PoolID: id, Address: '10.1.0.99' })).toEqual({ changes: [], response: {} });
    expect(releaseAddress(s, { PoolID: 'gone', Address: '10.1.0.5' })).toEqual({ changes: [], response: {} });
    expect(releaseAddress(s, { PoolID: id, Address: '10.9.9.9' })).toEqual({ changes: [], response: {} });
  });

  it('releaseAddress refuses text that is not an address', () => {
    const e = errorOf(() => releaseAddress(new State(), { PoolID: 'x', Address: '10.1.0.5/24' }));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toMatch(/^Address: /);
  });

  it('releaseAddress canonicalises IPv6 text', () => {
    const s = new State();
    const id = pool(s, { Pool: 'fd00::/64', V6: true });
    addr(s, id, 'fd00::20');
    expect(releaseAddress(s, { PoolID: id, Address: 'FD00:0::0020' }).changes).toEqual([
      { op: 'address.free', pool: id, address: 'fd00::20' },
    ]);
  });

  it('releasePool twice or of an unknown pool is a no-op', () => {
    const s = new State();
    const id = pool(s, { Pool: '10.1.0.0/24' });
    addr(s, id);
    const d = releasePool(s, id);
    expect(d).toEqual({ changes: [{ op: 'pool.delete', id }], response: {} });
    take(s, d);
    expect(s.pools.size).toBe(0);
    expect(releasePool(s, id)).toEqual({ changes: [], response: {} });
    expect(releasePool(s, 'never')).toEqual({ changes: [], response: {} });
  });
});

describe('large pools cost one interval', () => {
  for (const [p, V6] of [
    ['fd00:1::/64', true],
    ['10.0.0.0/8', false],
  ] as const) {
    it(`${p}: thousands of allocations keep State at one interval`, () => {
      const s = new State();
      const id = pool(s, { Pool: p, V6 });
      addr(s, id, '', true);
      const seen = new Set<string>();
      for (let i = 0; i < 5000; i++) seen.add(addr(s, id));
      expect(seen.size).toBe(5000);
      const ps = s.pools.get(id);
      expect(ps?.taken.intervalCount).toBe(1);
      expect(ps?.taken.size).toBe(5001n);
      // The snapshot is as small as the interval set.
      const snap = s.toSnapshot().pools[0];
      expect(snap?.taken).toHaveLength(1);
    });
  }
});

describe('concurrent requestAddress through the Plugin', () => {
  it('200 concurrent calls on one pool give 200 distinct addresses', async () => {
    const { plugin, state, store, exec } = testPlugin({ ipamEnv: () => env() });
    const { PoolID } = await plugin.requestPool({ Pool: '10.77.0.0/24' }, silentLog);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => plugin.requestAddress({ PoolID, Address: '', Options: null }, silentLog)),
    );
    const addresses = answers.map((a) => a.Address);
    expect(new Set(addresses).size).toBe(200);
    for (const a of addresses) expect(a).toMatch(/^10\.77\.0\.\d+\/24$/);
    expect(state.pools.get(PoolID)?.taken.size).toBe(200n);
    expect(store.committed).toHaveLength(201); // one change set per call
    expect(exec.calls).toHaveLength(0); // IPAM touches no host
  });
});
