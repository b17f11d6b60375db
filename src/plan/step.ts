/**
 * A plan is a list of host steps, each saying what it does and how to undo it. Plans are built
 * by pure functions (driver/, plan/) and run by one executor (host/executor.ts), which rolls
 * back the steps already done, in reverse, when one fails.
 */
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
   * Forget conntrack flows to a host port (both families), so that a UDP/SCTP flow that kept
   * sending while nothing was published there (it is tracked as a flow to the host itself and
   * never meets the DNAT rules again) reaches the container that now publishes the port.
   */
  | { readonly kind: 'conntrack-flush-port'; readonly proto: 'udp' | 'sctp'; readonly port: number }
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
    case 'bridge':
      return `bridge ${op.args.join(' ')}${op.absentOk ? '  [absent ok]' : ''}`;
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
    case 'conntrack-flush-port':
      return `conntrack -D -p ${op.proto} --orig-port-dst ${op.port}  [ipv4 and ipv6; none ok]`;
  }
}

export function renderPlan(plan: HostPlan): string {
  return plan
    .map((s) => `# ${s.what}${s.later ? '  [after the answer]' : ''}\n${renderOp(s.run)}${s.undo ? `\n  undo: ${renderOp(s.undo)}` : ''}`)
    .join('\n');
}
