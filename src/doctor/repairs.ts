/**
 * The repair steps of the reconciler, each built here once. Making a whole network or endpoint
 * again is not a repair of its own: it is the same plan CreateNetwork / CreateEndpoint run
 * (driver/network.ts networkSteps, driver/endpoint.ts endpointSteps).
 */
import type { HostStep } from '../plan/step.js';

/** Puts a host veth (back) on its bridge: a deleted bridge leaves its veths with no master. */
export const attachVethStep = (hostIf: string, bridge: string): HostStep => ({
  what: `attach ${hostIf} to ${bridge}`,
  run: { kind: 'ip', args: ['link', 'set', 'dev', hostIf, 'master', bridge] },
});

export const bringUpStep = (name: string): HostStep => ({
  what: `bring up ${name}`,
  run: { kind: 'ip', args: ['link', 'set', 'dev', name, 'up'] },
});

/** nodad for IPv6, as when the bridge is made: the gateway must answer at once. */
export const addGatewayStep = (gateway: string, bridge: string): HostStep => ({
  what: `add ${gateway} to ${bridge}`,
  run: { kind: 'ip', args: ['addr', 'add', gateway, 'dev', bridge, ...(gateway.includes(':') ? ['nodad'] : [])] },
});

export const setMtuStep = (name: string, mtu: number): HostStep => ({
  what: `set MTU of ${name}`,
  run: { kind: 'ip', args: ['link', 'set', 'dev', name, 'mtu', String(mtu)] },
});

/** Ownership-checked: the executor deletes it only while it carries our mark; absent is done. */
export const removeLinkStep = (name: string, why: string): HostStep => ({ what: `remove ${why} ${name}`, run: { kind: 'link-del', name } });

export const ensureHookStep = (): HostStep => ({ what: 'ensure the FORWARD hook', run: { kind: 'forward-hook', action: 'ensure' } });

/**
 * Several nft repairs as one transaction (all or nothing), in the order given; undefined when
 * one of them is not an nft step (or they are not of one table).
 */
export function oneTransaction(what: string, steps: readonly HostStep[]): HostStep | undefined {
  const ops = steps.flatMap((s) => (s.run.kind === 'nft' ? [s.run] : []));
  const table = ops[0]?.table;
  if (ops.length !== steps.length || table === undefined || ops.some((o) => o.table !== table)) return undefined;
  return { what, run: { kind: 'nft', table, commands: ops.flatMap((o) => o.commands) } };
}
