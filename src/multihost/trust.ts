/**
 * What a host believes of another host's endpoint record before it reaches the kernel (issue
 * 22, finding 1). The record's shape was checked when it was read (cluster/records.ts: no
 * loopback, link-local, multicast or broadcast address, no all-zero or multicast MAC); here is
 * its meaning in this host's context. Any holder of etcd credentials can write any record, so a
 * record that would send a member's traffic elsewhere, or take over an address or MAC of this
 * host's own containers, is refused, counted by reason and listed by the doctor. Pure: the
 * context is handed in.
 */
import { parseIp } from '../ip/address.js';
import { type Cidr, contains } from '../ip/cidr.js';
import type { EndpointRecord } from '../cluster/records.js';
import { familyOf } from '../rules/address.js';

export type RefusalReason =
  | 'outside-network' // its address is not in the network's subnet
  | 'gateway' // its address is the anycast gateway (the same on every host)
  | 'own-address' // its address is one of this host's containers on this network
  | 'own-mac' // its MAC is one of this host's containers', or the gateway's
  | 'own-underlay' // it sends frames to this host's own underlay address, under another node's name
  | 'underlay-family' // its underlay address is of the other family than this host's (one VXLAN device sends over one)
  | 'claimed-by-other' // the address's claim in etcd names another node
  | 'unclaimed' // no claim in etcd holds its address (judged again when one comes)
  | 'mac-taken' // another believed record, of another endpoint, has its MAC
  | 'names-this-host' // it names this node, but this host did not publish it
  | 'bad-membership'; // a membership of a network definition that fails its check (finding 21)

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'outside-network',
  'gateway',
  'own-address',
  'own-mac',
  'own-underlay',
  'underlay-family',
  'claimed-by-other',
  'unclaimed',
  'mac-taken',
  'names-this-host',
  'bad-membership',
];

export interface TrustContext {
  readonly self: string;
  /** This host's underlay address. */
  readonly selfUnderlay: string;
  readonly subnet: Cidr | undefined;
  readonly gateway: string;
  /** Dual stack: the IPv6 subnet and gateway; absent on an IPv4-only network (a record's `address6` is then refused). */
  readonly subnet6?: Cidr | undefined;
  readonly gateway6?: string | undefined;
  readonly gatewayMac: string;
  /** This host's own endpoints on the network (built once per batch: ownEndpoints). */
  readonly own: OwnEndpoints;
  /** Who holds an address's claim in etcd; undefined when the followed copy is not complete. */
  readonly claimHolder: ((address: string) => string | undefined) | undefined;
  /** The believed record of another host that holds a MAC now, if any. */
  readonly macHolder: (mac: string) => EndpointRecord | undefined;
}

export interface OwnEndpoints {
  readonly ids: ReadonlySet<string>;
  /** Address (no prefix length, IPv4 and IPv6 alike) → endpoint id. */
  readonly addresses: ReadonlyMap<string, string>;
  /** MAC → endpoint id. */
  readonly macs: ReadonlyMap<string, string>;
}

/** One of this host's endpoints, its addresses without prefix length. */
export interface OwnEndpoint {
  readonly id: string;
  readonly address?: string | undefined;
  readonly address6?: string | undefined;
  readonly mac: string;
}

/** The lookup tables of this host's endpoints (address without prefix length). */
export const ownEndpoints = (list: Iterable<OwnEndpoint>): OwnEndpoints =>
  mergeOwn({ ids: new Set(), addresses: new Map(), macs: new Map() }, list);

/** `base` with more endpoints (published, not yet in the state). */
export function mergeOwn(base: OwnEndpoints, more: Iterable<OwnEndpoint>): OwnEndpoints {
  const ids = new Set(base.ids);
  const addresses = new Map(base.addresses);
  const macs = new Map(base.macs);
  for (const e of more) {
    ids.add(e.id);
    if (e.address !== undefined) addresses.set(e.address, e.id);
    if (e.address6 !== undefined) addresses.set(e.address6, e.id);
    macs.set(e.mac, e.id);
  }
  return { ids, addresses, macs };
}

export type Judgement = { readonly ok: true } | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

const refuse = (reason: RefusalReason, detail: string): Judgement => ({ ok: false, reason, detail });

export function judgeRecord(e: EndpointRecord, c: TrustContext): Judgement {
  const a = parseIp(e.address);
  if (!a || !c.subnet || !contains(c.subnet, a)) return refuse('outside-network', `address ${e.address} is not in the network`);
  if (e.address === c.gateway) return refuse('gateway', `address ${e.address} is the network's gateway`);
  // An IPv6 address meets every check the IPv4 one does (dual stack, issue 23): no weaker path.
  const a6 = e.address6 !== undefined ? parseIp(e.address6) : undefined;
  if (e.address6 !== undefined && (!a6 || !c.subnet6 || !contains(c.subnet6, a6)))
    return refuse('outside-network', `address ${e.address6} is not in the network${c.subnet6 ? '' : ' (it has no IPv6)'}`);
  if (e.address6 !== undefined && e.address6 === c.gateway6)
    return refuse('gateway', `address ${e.address6} is the network's IPv6 gateway`);
  const addresses = [e.address, ...(e.address6 !== undefined ? [e.address6] : [])];
  if (e.node === c.self) {
    // This host's own records are never programmed here; one it did not write is a forgery.
    return c.own.ids.has(e.id)
      ? { ok: true }
      : refuse('names-this-host', `names this node (${c.self}), which has no endpoint ${e.id.slice(0, 12)}`);
  }
  if (e.underlay === c.selfUnderlay) return refuse('own-underlay', `node ${e.node} gives this host's own underlay address ${e.underlay}`);
  // A VXLAN device whose source is IPv6 cannot send to an IPv4 host, nor the reverse.
  if (familyOf(e.underlay) !== familyOf(c.selfUnderlay))
    return refuse('underlay-family', `node ${e.node}'s underlay ${e.underlay} is not IPv${familyOf(c.selfUnderlay)}, as this host's is`);
  if (e.mac === c.gatewayMac) return refuse('own-mac', `MAC ${e.mac} is the network's gateway MAC`);
  for (const x of addresses) {
    const byAddress = c.own.addresses.get(x);
    if (byAddress !== undefined) return refuse('own-address', `address ${x} is this host's endpoint ${byAddress.slice(0, 12)}`);
  }
  const byMac = c.own.macs.get(e.mac);
  if (byMac !== undefined) return refuse('own-mac', `MAC ${e.mac} is this host's endpoint ${byMac.slice(0, 12)}`);
  // An address is the node's that claims it: a record taking another's would break traffic to it.
  // Every endpoint's address is claimed before it is published, but the claims are followed by a
  // watch of their own and may lag the record: an unclaimed one waits (judged again when the
  // claims change). While the claims' copy is incomplete (etcd away) the record is let through.
  if (c.claimHolder) {
    for (const x of addresses) {
      const holder = c.claimHolder(x);
      if (holder === undefined) return refuse('unclaimed', `no claim holds address ${x}`);
      if (holder !== e.node) return refuse('claimed-by-other', `address ${x} is claimed by node ${holder}, not ${e.node}`);
    }
  }
  // One MAC, one endpoint: the first believed keeps it (a forwarding entry has one destination).
  const other = c.macHolder(e.mac);
  if (other && other.id !== e.id) return refuse('mac-taken', `MAC ${e.mac} is endpoint ${other.id.slice(0, 12)}'s, of node ${other.node}`);
  return { ok: true };
}
