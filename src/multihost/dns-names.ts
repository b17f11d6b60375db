/**
 * The names of a local endpoint that travel in its etcd record, for DNS on the other hosts
 * (issue 23): the container's name and its `--network-alias` names (compose's service names are
 * aliases). Pure. Only aliases mynet's DNS can answer (one lowercase label) travel, each once,
 * sorted (so the same set is the same record), at most MAX_RECORD_ALIASES of them. A name the
 * other hosts' record check would refuse (CONTAINER_NAME) does not travel: the record would be
 * refused whole there, and the container unreachable across hosts instead of only unnamed.
 */
import { CONTAINER_NAME, MAX_RECORD_ALIASES, NAME_LABEL } from '../rules/names.js';

/** What Docker reports of a local endpoint's names. */
export interface DnsNames {
  readonly name: string;
  readonly aliases: readonly string[];
}

/** The fields of an endpoint record that carry the names (none when Docker told us none). */
export interface RecordNames {
  readonly name?: string;
  readonly aliases?: readonly string[];
}

export function recordNames(n: DnsNames | undefined): RecordNames {
  if (!n) return {};
  const own = n.name.toLowerCase();
  const aliases = [...new Set(n.aliases.map((a) => a.toLowerCase()))]
    .filter((a) => a !== own && NAME_LABEL.test(a))
    .sort()
    .slice(0, MAX_RECORD_ALIASES);
  return { ...(CONTAINER_NAME.test(n.name) && { name: n.name }), ...(aliases.length > 0 && { aliases }) };
}

/** One string per set of names: what was published, compared with what Docker says now. */
export const namesKey = (r: RecordNames): string => JSON.stringify([r.name ?? null, r.aliases ?? []]);
