/**
 * IPAM decisions (IpamDriver.*): pools and addresses. Pure: they read the State and return
 * Changes and the response. Allocation cost does not grow with pool size or with how many
 * addresses are taken (ip/interval-set.ts): a /8 or a /64 works without per-address memory.
 */
import { PluginError, invalid } from '../errors.js';
import { type Family, formatIp, parseIp } from '../ip/address.js';
import { type Cidr, contains, formatCidr, hostRange, overlaps, parseCidr, sizeOf, within } from '../ip/cidr.js';
import type { Decision } from '../decision.js';
import type { DefaultPool } from '../ip/pools.js';
import type { PoolRecord, PoolState, StateView } from './state.js';

export const LOCAL_SPACE = 'mynet-local';
export const GLOBAL_SPACE = 'mynet-global';
export const GATEWAY_TYPE = 'com.docker.network.gateway';

export interface RequestPoolRequest {
  AddressSpace?: string;
  Pool?: string;
  SubPool?: string;
  Options?: Record<string, string> | null;
  V6?: boolean;
}

export interface IpamEnv {
  readonly defaultPools: readonly DefaultPool[];
  /** Prefixes in use on the host (routes, addresses), which an automatic pool must not overlap. */
  readonly hostPrefixes: readonly Cidr[];
}

function cidrField(field: string, text: string): Cidr {
  const r = parseCidr(text);
  if (!r.ok) throw invalid(field, r.why);
  return r.cidr;
}

const poolCidr = (p: PoolRecord): Cidr => (parseCidr(p.pool) as { ok: true; cidr: Cidr }).cidr;

export function requestPool(
  state: StateView,
  req: RequestPoolRequest,
  env: IpamEnv,
): Decision<{ PoolID: string; Pool: string; Data: Record<string, string> }> {
  const space = req.AddressSpace || LOCAL_SPACE;
  const family: Family = req.V6 ? 6 : 4;
  const held = [...state.pools.values()].map((p) => ({ id: p.record.id, cidr: poolCidr(p.record) }));
  let cidr: Cidr;
  let subPool: Cidr | undefined;
  if (req.Pool) {
    cidr = cidrField('Pool', req.Pool);
    if (cidr.family !== family) throw invalid('Pool', `${req.Pool} is IPv${cidr.family} but V6 is ${String(!!req.V6)}`);
    const clash = held.find((h) => overlaps(h.cidr, cidr));
    if (clash) {
      throw new PluginError('CONFLICT', `Pool: ${formatCidr(cidr)} overlaps ${formatCidr(clash.cidr)}, already allocated by mynet`);
    }
    if (req.SubPool) {
      subPool = cidrField('SubPool', req.SubPool);
      if (!within(subPool, cidr)) throw invalid('SubPool', `${req.SubPool} is not inside Pool ${formatCidr(cidr)}`);
    }
  } else {
    if (req.SubPool) throw invalid('SubPool', 'given without a Pool');
    cidr = pickDefault(
      family,
      held.map((h) => h.cidr),
      env,
    );
  }
  const id = `${space}/${formatCidr(cidr)}${subPool ? `/${formatCidr(subPool)}` : ''}`;
  const record: PoolRecord = {
    id,
    space,
    pool: formatCidr(cidr),
    ...(subPool ? { subPool: formatCidr(subPool) } : {}),
    family,
    options: { ...(req.Options ?? {}) },
  };
  return { changes: [{ op: 'pool.put', pool: record }], response: { PoolID: id, Pool: record.pool, Data: {} } };
}

/** The first subnet of the default pools that overlaps nothing we hold nor any host prefix. */
function pickDefault(family: Family, held: readonly Cidr[], env: IpamEnv): Cidr {
  const busy = [...held, ...env.hostPrefixes.filter((p) => p.family === family)];
  const bases = env.defaultPools.filter((d) => d.base.family === family);
  for (const d of bases) {
    const step = sizeOf({ family, base: 0n, prefix: d.size });
    const count = sizeOf(d.base) / step;
    // Skip whole busy prefixes at a time, so a /48 split into /64s costs O(busy), not O(65536).
    let k = 0n;
    while (k < count) {
      const cand: Cidr = { family, base: d.base.base + k * step, prefix: d.size };
      const hit = busy.find((b) => overlaps(b, cand));
      if (!hit) return cand;
      const hitEnd = hit.base + sizeOf(hit);
      const next = (hitEnd - d.base.base + step - 1n) / step;
      k = next > k ? next : k + 1n;
    }
  }
  const list = bases.map((d) => `${formatCidr(d.base)}/${d.size}`).join(', ') || 'none configured';
  throw new PluginError('POOL_EXHAUSTED', `Pool: no free IPv${family} subnet left in MYNET_DEFAULT_POOLS (${list})`);
}

export function releasePool(state: StateView, poolId: string): Decision<Record<string, never>> {
  return { changes: state.pools.has(poolId) ? [{ op: 'pool.delete', id: poolId }] : [], response: {} };
}

export interface RequestAddressRequest {
  PoolID: string;
  Address?: string;
  Options?: Record<string, string> | null;
}

export function poolOf(state: StateView, id: string): Readonly<PoolState> {
  const p = state.pools.get(id);
  if (!p) throw new PluginError('POOL_NOT_FOUND', `PoolID: no mynet pool "${String(id).slice(0, 80)}"`);
  return p;
}

export function requestAddress(state: StateView, req: RequestAddressRequest): Decision<{ Address: string; Data: Record<string, string> }> {
  const p = poolOf(state, req.PoolID);
  const cidr = poolCidr(p.record);
  const isGateway = req.Options?.RequestAddressType === GATEWAY_TYPE;
  const range = allocRange(p.record, cidr);
  let value: bigint;
  let cursor = false;
  if (req.Address) {
    const a = parseIp(req.Address);
    if (!a) throw invalid('Address', `"${req.Address.slice(0, 60)}" is not a valid IP address`);
    if (!contains(cidr, a)) throw invalid('Address', `${req.Address} is not in pool ${p.record.pool}`);
    const host = hostRange(cidr);
    if (a.value < host.first || a.value > host.last) {
      throw invalid('Address', `${req.Address} is the ${a.value < host.first ? 'network' : 'broadcast'} address of ${p.record.pool}`);
    }
    if (p.taken.has(a.value)) throw new PluginError('CONFLICT', `Address: ${req.Address} is already in use in pool ${p.record.pool}`);
    value = a.value;
  } else {
    // The gateway takes the first free address; containers go on serially after the last one
    // handed out (as Docker's IPAM does), so a released address is not reused at once.
    const start = !isGateway && p.cursor !== undefined && p.cursor >= range.first && p.cursor < range.last ? p.cursor + 1n : range.first;
    const found = p.taken.firstFree(start, range.last) ?? p.taken.firstFree(range.first, start - 1n);
    if (found === undefined) {
      throw new PluginError('POOL_EXHAUSTED', `Address: no free address left in ${p.record.subPool ?? p.record.pool}`);
    }
    value = found;
    cursor = !isGateway;
  }
  const text = formatIp({ family: p.record.family, value });
  return {
    changes: [{ op: 'address.take', pool: p.record.id, address: text, ...(cursor ? { cursor } : {}) }],
    response: { Address: `${text}/${cidr.prefix}`, Data: {} },
  };
}

/** Where automatic addresses come from: the SubPool (if any) within the pool's host range. */
function allocRange(p: PoolRecord, cidr: Cidr): { first: bigint; last: bigint } {
  const host = hostRange(cidr);
  if (!p.subPool) return host;
  const sub = (parseCidr(p.subPool) as { ok: true; cidr: Cidr }).cidr;
  const s = { first: sub.base, last: sub.base + sizeOf(sub) - 1n };
  return { first: s.first > host.first ? s.first : host.first, last: s.last < host.last ? s.last : host.last };
}

export function releaseAddress(state: StateView, req: { PoolID: string; Address: string }): Decision<Record<string, never>> {
  const a = parseIp(req.Address);
  if (!a) throw invalid('Address', `"${String(req.Address).slice(0, 60)}" is not a valid IP address`);
  const p = state.pools.get(req.PoolID);
  // Idempotent: dockerd retries and rolls back by releasing; an unknown pool or a free address is fine.
  if (!p || !p.taken.has(a.value)) return { changes: [], response: {} };
  return { changes: [{ op: 'address.free', pool: req.PoolID, address: formatIp(a) }], response: {} };
}

/**
 * The pool's free addresses in the order requestAddress hands them out (after the cursor, then
 * from the start), lazily: a cluster network's claim takes the first no other host holds.
 */
export function* freeAddresses(state: StateView, poolId: string): Generator<string> {
  const p = poolOf(state, poolId);
  const cidr = poolCidr(p.record);
  const range = allocRange(p.record, cidr);
  const start = p.cursor !== undefined && p.cursor >= range.first && p.cursor < range.last ? p.cursor + 1n : range.first;
  for (const [from, to] of [
    [start, range.last],
    [range.first, start - 1n],
  ] as const) {
    let v = from;
    while (v <= to) {
      const f = p.taken.firstFree(v, to);
      if (f === undefined) break;
      yield formatIp({ family: p.record.family, value: f });
      v = f + 1n;
    }
  }
}

/** Takes one address a cluster claim chose (checked as an `--ip` is); `cursor`: it was automatic. */
export function takeAddress(
  state: StateView,
  poolId: string,
  address: string,
  cursor: boolean,
): Decision<{ Address: string; Data: Record<string, string> }> {
  const d = requestAddress(state, { PoolID: poolId, Address: address });
  return cursor ? { ...d, changes: d.changes.map((c) => (c.op === 'address.take' ? { ...c, cursor: true } : c)) } : d;
}
