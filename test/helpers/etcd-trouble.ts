/**
 * A lossy etcd for the host and e2e tiers (issue 22, finding 6), and the figures those tests
 * print. This kernel has no netem: the loss is nft's `numgen random` in a table of the test's own,
 * in the namespace where the test's etcd listens, on that etcd's port only.
 */

/** The nft script that adds `table` dropping `percent`% of TCP packets to and from `port`. */
export function lossScript(table: string, port: number, percent: number): string {
  return `add table inet ${table}
add chain inet ${table} in { type filter hook input priority 0; }
add chain inet ${table} out { type filter hook output priority 0; }
add rule inet ${table} in tcp dport ${port} numgen random mod 100 < ${percent} drop
add rule inet ${table} out tcp sport ${port} numgen random mod 100 < ${percent} drop`;
}

/** "n=… p50=… p90=… max=…" of durations in ms (printed as figures, never asserted). */
export function figures(ms: readonly number[]): string {
  const s = [...ms].sort((x, y) => x - y);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN);
  return `n=${s.length} p50=${at(0.5)} ms p90=${at(0.9)} ms max=${at(1)} ms`;
}
