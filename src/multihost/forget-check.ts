/**
 * Whether `mynet cluster forget <node>` may remove a node's claims and records (issue 22,
 * finding 4), decided from what was read (pure). A partitioned host is indistinguishable from a
 * dead one in etcd alone, so forget is refused while any sign says the node is alive: its
 * presence is in etcd, one of its claims or records was written while this host checked (read,
 * then read again after the probes), or its registered underlay address answers.
 */

export interface RecordVersion {
  readonly key: string;
  readonly modRevision: number;
}

export interface ForgetFacts {
  readonly node: string;
  /** This host's name and underlay address: never forgotten, never probed. */
  readonly self: { readonly name: string; readonly address: string };
  readonly present: boolean;
  /** The node's claims and records at the first read, and at the second (after the probes). */
  readonly before: readonly RecordVersion[];
  readonly after: readonly RecordVersion[];
  /** Each underlay address its records name, and whether it answered the probe. */
  readonly probed: readonly { readonly address: string; readonly answers: boolean }[];
}

/** At most this many distinct underlay addresses are probed (records are a stranger's input). */
export const MAX_PROBED = 4;

/** The underlay addresses to probe: the node's records' own, never this host's, at most MAX_PROBED. */
export function probeTargets(underlays: Iterable<string>, selfAddress: string): string[] {
  return [...new Set(underlays)]
    .filter((a) => a !== selfAddress)
    .sort()
    .slice(0, MAX_PROBED);
}

/** Why forget is refused, or undefined when the node may be forgotten. */
export function forgetRefusal(f: ForgetFacts): string | undefined {
  if (f.node === f.self.name) return `node: ${f.node} is this host; it cannot forget itself`;
  if (f.present) return `node: ${f.node} is present in the cluster (its lease is alive); stop it first, or wait for its lease to expire`;
  const was = new Map(f.before.map((r) => [r.key, r.modRevision]));
  const renewed = f.after.filter((r) => was.get(r.key) !== r.modRevision);
  if (renewed.length > 0)
    return `node: ${f.node} is writing its records (${renewed.length} written while this host checked, e.g. ${renewed[0]?.key ?? '?'}); it is alive though its presence is gone: stop it first`;
  const answering = f.probed.filter((p) => p.answers).map((p) => p.address);
  if (answering.length > 0)
    return `node: ${f.node} still answers on its underlay address ${answering.join(', ')} (TCP to port 4789): it may be cut off from etcd only, and its containers would keep addresses given to others; stop it or cut it off first`;
  return undefined;
}
