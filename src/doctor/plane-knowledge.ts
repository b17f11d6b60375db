/**
 * What the reconciler is told of the cluster's data plane (multihost/plane.ts `view`): what each
 * cluster network's plane last believed from etcd. Its own file so that the device and guard
 * (vxlan.ts) and the entries (vxlan-entries.ts) read it without importing each other.
 */
import type { RemoteEntry } from '../plan/vxlan.js';

/** What this host's data plane knows of one cluster network (from etcd, as last seen). */
export interface PlaneKnowledge {
  /** The members' underlay addresses; undefined before the plane's first sync since start. */
  readonly members?: readonly string[];
  /** The remote endpoints' entries; undefined before the first sync. */
  readonly entries?: readonly RemoteEntry[];
  /** The member hosts the all-zero entry floods to (mynet.multicast; empty without it). */
  readonly flood?: readonly string[];
  /** false: the plane does not follow etcd's records right now: its entries are not compared. */
  readonly following?: boolean;
  /** Records that parse but that this host does not believe (multihost/trust.ts): never programmed. */
  readonly refused?: readonly RefusedRecordNote[];
  /** The network's policies in etcd that do not check: [key, why]. */
  readonly refusedPolicies?: readonly (readonly [string, string])[];
}

export interface RefusedRecordNote {
  readonly id: string;
  readonly node: string;
  readonly reason: string;
  readonly detail: string;
}

/** By local network id. */
export type DataPlaneView = ReadonlyMap<string, PlaneKnowledge>;
