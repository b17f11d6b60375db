/**
 * A plan is a list of host steps, each saying what it does and how to undo it. Plans are built
 * by pure functions (driver/, plan/) and run by one executor (host/executor.ts), which rolls
 * back the steps already done, in reverse, when one fails.
 */
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
  /** Delete a link, but only if it carries our mark (netdev group); absent counts as done. */
  | { readonly kind: 'link-del'; readonly name: string }
  /** Take our veth off its bridge, down, into the retired group (plan/link-names.ts); absent: done. */
  | { readonly kind: 'link-retire'; readonly name: string }
  /** Delete every retired link at once (`ip link del group`); `name` is the one that asked. */
  | { readonly kind: 'link-reap'; readonly name: string }
  /** One nft transaction (`nft -f -`): all of it applies or none. */
  | { readonly kind: 'nft'; readonly script: string }
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
  | { readonly kind: 'forward-hook'; readonly action: 'ensure' | 'remove' };

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

/** One line per op, as a reader (and a golden test) would want to see it. */
export function renderOp(op: HostOp): string {
  switch (op.kind) {
    case 'ip':
      return `ip ${op.args.join(' ')}${op.absentOk ? '  [absent ok]' : ''}`;
    case 'link-del':
      return `ip link del ${op.name}  [if ours; absent ok]`;
    case 'link-retire':
      return `ip link set dev ${op.name} down nomaster group retired  [if ours; absent ok]`;
    case 'link-reap':
      return `ip link del group retired  [with ${op.name}; none ok]`;
    case 'nft':
      return `nft -f - <<\n${op.script.trimEnd()}\n>>`;
    case 'sysctl':
      return `sysctl ${op.key}=${op.value}`;
    case 'forward-hook':
      return `forward-hook ${op.action}`;
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
