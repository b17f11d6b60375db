/** What the cluster agent asks of this host's WireGuard (issue 24); one implementation, wireguard/lifecycle.ts. */
import type { Ability } from './capability.js';
import type { Judged } from './peer-record.js';
import type { Difference } from '../../doctor/difference.js';

/** A believed peer as `mynet status` shows it. */
export interface PeerStatus {
  readonly node: string;
  readonly endpoint: string;
  readonly tunnel: string;
  /** The interface holds it (false: not yet programmed, or removed by hand). */
  readonly programmed: boolean;
  /** ISO time of the last handshake; undefined: none yet. */
  readonly lastHandshake: string | undefined;
  readonly rxBytes: number;
  readonly txBytes: number;
}

export interface WireGuardPort {
  /** Whether this host can run an encrypted network, with the refusal naming what to install or set. */
  ability(): Ability;
  /** This host's tunnel address, bare: the VXLAN source of its encrypted networks. */
  readonly tunnelAddress: string;
  /** The interface encrypted VXLAN comes out of (the guard's plaintext drop, plan/vxlan-firewall.ts). */
  readonly iface: string;
  /** An encrypted network is on this host: the interface up, this host's record published, the peers followed. */
  ensure(): Promise<void>;
  /** No encrypted network is left: the interface and this host's record go. */
  release(): Promise<void>;
  /** A new key pair, republished (`mynet cluster rotate-key`); refused while no encrypted network is up. */
  rotate(): Promise<{ readonly publicKey: string }>;
  /** Shutdown: stops following etcd; the interface stays (a restart finds it). */
  stop(): Promise<void>;
  /** The tunnel address of the believed peer at this underlay address (VXLAN goes there), if any. */
  tunnelAt(underlay: string): string | undefined;
  /** Called whenever the believed peers change. */
  onPeers(listener: () => void): void;
  /** The interface and its peers now; undefined while no encrypted network is up. */
  status(): Promise<{ readonly iface: string; readonly peers: readonly PeerStatus[] } | undefined>;
  /**
   * The interface's peers against etcd's, each difference with its repair (run by the
   * reconciler, doctor/reconcile.ts, by its policy); empty while no encrypted network is up.
   */
  differences(): Promise<readonly Difference[]>;
  /** What was judged last (status, doctor). */
  readonly judged: Judged;
}
