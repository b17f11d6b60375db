/**
 * A plan is a list of host steps, each saying what it does and how to undo it. Plans are built
 * by pure functions (driver/, plan/) and run by one executor (host/executor.ts), which rolls
 * back the steps already done, in reverse, when one fails.
 */
import { bareAddress } from '../rules/address.js';
import { type NftCommand, nftResources } from './nft-change.js';
import { nftScript } from './nft-text.js';

/** A host port held with a bound socket while it is published (host/port-holder.ts). */
export interface HeldSocket {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  /** 0.0.0.0 or :: for every address of the family, else one address. */
  readonly address: string;
  readonly port: number;
  /** The binding's HostIP as published ('' for every address), for messages. */
  readonly hostIp: string;
}

export type HostOp =
  /** One `ip` command (argv after `ip`). `absentOk`: "does not exist" counts as done (deletes). */
  | { readonly kind: 'ip'; readonly args: readonly string[]; readonly absentOk?: boolean }
  /**
   * One `bridge` command (argv after `bridge`): forwarding entries on mynet's VXLAN devices
   * (plan/vxlan.ts), which `ip` cannot program. `absentOk` as for `ip`.
   */
  | { readonly kind: 'bridge'; readonly args: readonly string[]; readonly absentOk?: boolean }
  /** Delete a link, but only if it carries our mark (netdev group); absent counts as done. */
  | { readonly kind: 'link-del'; readonly name: string }
  /**
   * Our veth down (its bridge port forwards nothing) and into the retired group
   * (plan/link-names.ts); absent: done. It stays on its bridge until the reap deletes it.
   */
  | { readonly kind: 'link-retire'; readonly name: string }
  /** Delete every retired link at once (`ip link del group`); `name` is the one that asked. */
  | { readonly kind: 'link-reap'; readonly name: string }
  /**
   * One nft transaction on one table ('inet mynet'): typed commands (plan/nft-change.ts),
   * written as `nft -f` text in one place (plan/nft-text.ts); all of it applies or none.
   * `absentTableOk` (a teardown): the change only removes objects of that table, so when it
   * fails and the table is not there, everything it would remove is gone already: done.
   */
  | { readonly kind: 'nft'; readonly table: string; readonly commands: readonly NftCommand[]; readonly absentTableOk?: boolean }
  /** A /proc/sys key in slash form (net/ipv4/ip_forward), so interface names with dots stay whole. */
  | { readonly kind: 'sysctl'; readonly key: string; readonly value: string }
  /** Forget conntrack flows answered by this address (after its ports are unpublished). */
  | { readonly kind: 'conntrack-flush'; readonly address: string }
  /**
   * Forget conntrack flows to these host ports (both families), so that a UDP/SCTP flow that
   * kept sending while nothing was published there (it is tracked as a flow to the host itself
   * and never meets the DNAT rules again) reaches the container that now publishes the port.
   * Many ports in one pass: one listing per protocol and family, a delete per port with flows.
   */
  | { readonly kind: 'conntrack-flush-ports'; readonly udp: readonly number[]; readonly sctp: readonly number[] }
  /**
   * Bind a socket for each host port (all or none): a bind that fails because a process of the
   * host uses the port is the conflict check. Undo: port-release. Already held: done.
   */
  | { readonly kind: 'port-hold'; readonly sockets: readonly HeldSocket[] }
  /** Close the sockets of port-hold; not held counts as done. */
  | { readonly kind: 'port-release'; readonly sockets: readonly HeldSocket[] }
  /** Make sure iptables FORWARD jumps to our chain (see host/forward-hook.ts); idempotent. */
  | { readonly kind: 'forward-hook'; readonly action: 'ensure' | 'remove' }
  /**
   * One `wg` command (argv after `wg`) on mynet's WireGuard interface (issue 24): `set <if> peer
   * ...`. Never `show dump` or `showconf`: those print the private key.
   */
  | { readonly kind: 'wg'; readonly args: readonly string[] };

export interface HostStep {
  readonly what: string;
  readonly run: HostOp;
  readonly undo?: HostOp;
  /**
   * Runs after the answer, in the background (host/background.ts): only deletes and flushes
   * that nothing in the answer depends on. Such a step has no undo and cannot fail the request.
   */
  readonly later?: boolean;
}

export type HostPlan = readonly HostStep[];

/**
 * Something on the host an op reads or changes, as a typed key: two ops must keep their order
 * (host/background.ts) exactly when their sets meet. `link:` an interface name, `addr:` a bare
 * address (a container's, whose flows a conntrack flush forgets), `port:` proto/host port,
 * `group:` a netdev group, `sysctl:` a key, `hook` the FORWARD hook.
 */
export type Resource = `link:${string}` | `addr:${string}` | `port:${string}` | `group:${string}` | `sysctl:${string}` | 'hook';

/** Words of `ip` argv that are followed by an interface name. */
const IP_LINK_WORDS = new Set(['dev', 'name', 'master']);

function ipResources(args: readonly string[]): Resource[] {
  const out: Resource[] = [];
  for (let i = 0; i < args.length - 1; i++) {
    const w = args[i] as string;
    const next = args[i + 1] as string;
    if (IP_LINK_WORDS.has(w)) out.push(`link:${next}`);
    else if (w === 'group') out.push(`group:${next}`);
    else if (w === 'alias') i++; // free text, never a name
  }
  // `ip link del NAME`, `ip addr add|del ADDR/LEN ...`
  if (args[0] === 'link' && (args[1] === 'del' || args[1] === 'delete') && args[2] && !IP_LINK_WORDS.has(args[2]) && args[2] !== 'group')
    out.push(`link:${args[2]}`);
  if ((args[0] === 'addr' || args[0] === 'address') && (args[1] === 'add' || args[1] === 'del') && args[2])
    out.push(`addr:${bareAddress(args[2])}`);
  return out;
}

/** What an op touches. Exhaustive: a new op kind does not compile until it says what it touches. */
export function resourcesOf(op: HostOp): Resource[] {
  switch (op.kind) {
    case 'ip':
    case 'bridge': // `bridge fdb ... dev <link>` names its link as ip does
      return ipResources(op.args);
    case 'link-del':
    case 'link-retire':
    case 'link-reap':
      return [`link:${op.name}`];
    case 'nft':
      return nftResources(op.commands);
    case 'sysctl': {
      // net/ipv4/conf/<if>/… names a link.
      const parts = op.key.split('/');
      return [
        `sysctl:${op.key}`,
        ...(parts[2] === 'conf' && parts[3] && parts[3] !== 'all' && parts[3] !== 'default' ? [`link:${parts[3]}` as const] : []),
      ];
    }
    case 'conntrack-flush':
      return [`addr:${op.address}`];
    case 'conntrack-flush-ports':
      return [...op.udp.map((p) => `port:udp/${p}` as const), ...op.sctp.map((p) => `port:sctp/${p}` as const)];
    case 'port-hold':
    case 'port-release':
      return op.sockets.map((s) => `port:${s.proto}/${s.port}` as const);
    case 'forward-hook':
      return ['hook'];
    case 'wg': // `wg set <if> ...`
      return op.args[1] !== undefined ? [`link:${op.args[1]}`] : [];
  }
}

/** Everything a plan's steps touch, undo ops included. */
export const planResources = (plan: HostPlan): Set<Resource> =>
  new Set(plan.flatMap((s) => [...resourcesOf(s.run), ...(s.undo ? resourcesOf(s.undo) : [])]));

/** One line per op, as a reader (and a golden test) would want to see it. */
export function renderOp(op: HostOp): string {
  switch (op.kind) {
    case 'ip':
      return `ip ${op.args.join(' ')}${op.absentOk ? '  [absent ok]' : ''}`;
    case 'bridge':
      return `bridge ${op.args.join(' ')}${op.absentOk ? '  [absent ok]' : ''}`;
    case 'link-del':
      return `ip link del ${op.name}  [if ours; absent ok]`;
    case 'link-retire':
      return `ip link set dev ${op.name} down group retired  [if ours; absent ok]`;
    case 'link-reap':
      return `ip link del group retired  [with ${op.name}; none ok]`;
    case 'nft':
      return `nft -f - <<\n${nftScript(op.table, op.commands)}\n>>${op.absentTableOk ? `  [no table ${op.table}: done]` : ''}`;
    case 'sysctl':
      return `sysctl ${op.key}=${op.value}`;
    case 'forward-hook':
      return `forward-hook ${op.action}`;
    case 'wg':
      return `wg ${op.args.join(' ')}`;
    case 'conntrack-flush':
      return `conntrack -D --reply-src ${op.address}  [none ok]`;
    case 'conntrack-flush-ports':
      return `conntrack -D --orig-port-dst ${portList('udp', op.udp, 'sctp', op.sctp)}  [ipv4 and ipv6; none ok]`;
    case 'port-hold':
      return `hold ${socketList(op.sockets)}  [held ok]`;
    case 'port-release':
      return `release ${socketList(op.sockets)}  [not held ok]`;
  }
}

const portList = (...pairs: (string | readonly number[])[]): string => {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const ports = pairs[i + 1] as readonly number[];
    if (ports.length) out.push(`-p ${pairs[i] as string} ${ports.join(',')}`);
  }
  return out.join(' ');
};
const socketList = (sockets: readonly HeldSocket[]): string =>
  sockets.map((s) => `${s.proto} ${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`).join(', ');

export function renderPlan(plan: HostPlan): string {
  return plan
    .map((s) => `# ${s.what}${s.later ? '  [after the answer]' : ''}\n${renderOp(s.run)}${s.undo ? `\n  undo: ${renderOp(s.undo)}` : ''}`)
    .join('\n');
}
