// Namespaced "hosts" for the multi-host benchmarks, as test/host/cluster-dataplane.test.ts makes
// them: an underlay bridge in its own namespace (198.18.30.0/24, MTU 1500, inside the namespaces
// only), a namespace per host plugged into it, and "containers" as namespaces. Every name starts
// with mnt-<tag>- (namespaces) or <tag> (links inside them; tag mhb unless a benchmark gives its
// own, with its own underlay prefix); only namespaces made here are deleted,
// by the names recorded when they were made, at the end or at exit.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ExecaExecutor } from '../dist/host/execa-executor.js';
import { sh, sleep } from './lib.mjs';

export const UNDERLAY_PREFIX = '198.18.30';
/** The IPv6 underlay's /64 (bench/cluster-throughput.mjs), inside the namespaces only. */
export const UNDERLAY6_PREFIX = '2001:db8:62::';
const made = new Map(); // name -> executor

const destroy = (name) => {
  made.get(name)?.close();
  try { execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); } catch { /* already gone */ }
  made.delete(name);
};
process.once('exit', () => { for (const n of [...made.keys()]) destroy(n); });

/**
 * A namespace of ours, with loopback up and IPv6 off (no neighbour discovery in the figures);
 * `ipv6`: on, for a host or an underlay that carries VXLAN over IPv6 (issue 23); `tag`: the
 * benchmark's own name prefix (default mhb).
 */
export function netns(role, { tag = 'mhb', ipv6 = false } = {}) {
  const name = `mnt-${tag}-${role}-${randomBytes(3).toString('hex')}`;
  sh('ip', ['netns', 'add', name]);
  const exec = new ExecaExecutor({ netns: name, persistent: true });
  made.set(name, exec);
  const run = (...argv) => sh('ip', ['netns', 'exec', name, ...argv]);
  run('ip', 'link', 'set', 'lo', 'up');
  if (!ipv6) run('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
  return { name, exec, run, destroy: () => destroy(name) };
}

/** The underlay: a bridge in its own namespace; `plug` gives a namespace an address on it. */
export function underlay({ tag = 'mhb', ipv6 = false } = {}) {
  const ns = netns('ul', { tag, ipv6 });
  const br = `${tag}ul`;
  // Its own MAC: a bridge without one takes its lowest port's, which changes as hosts come and go.
  ns.run('ip', 'link', 'add', br, 'mtu', '1500', 'address', '02:00:c6:12:1e:01', 'type', 'bridge');
  ns.run('ip', 'link', 'set', br, 'up');
  let n = 0;
  return {
    ns,
    /** Plugs `into` with ul0 at `address` (198.18.30.x by default); answers the address. */
    plug(into, address) {
      const port = `${tag}p${n++}`;
      ns.run('ip', 'link', 'add', port, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'ul0', 'mtu', '1500', 'netns', into.name);
      ns.run('ip', 'link', 'set', port, 'master', br, 'up');
      into.run('ip', 'addr', 'add', `${address}/24`, 'dev', 'ul0');
      into.run('ip', 'link', 'set', 'ul0', 'up');
      return address;
    },
    /** A second, IPv6 address on `into`'s ul0 (UNDERLAY6_PREFIX::x), usable at once (no DAD). */
    plug6(into, address) {
      into.run('ip', 'addr', 'add', `${address}/64`, 'dev', 'ul0', 'nodad');
      return address;
    },
  };
}

/** What dockerd does with a container's veth end: into the sandbox, renamed eth0, addressed. */
export function intoContainer(host, container, ifName, cidr, gateway) {
  host.run('ip', 'link', 'set', 'dev', ifName, 'netns', container.name);
  container.run('ip', 'link', 'set', 'dev', ifName, 'name', 'eth0');
  container.run('ip', 'addr', 'add', cidr, 'dev', 'eth0');
  container.run('ip', 'link', 'set', 'eth0', 'up');
  if (gateway) container.run('ip', 'route', 'add', 'default', 'via', gateway);
}

export function destroyAll() {
  for (const n of [...made.keys()]) destroy(n);
}

/** One iperf3 run (one TCP stream, 1 s warm-up) from container `from` to `to`: received Gbit/s, retransmits, the sender's CPU. */
export async function iperf(from, to, seconds) {
  const srv = spawn('ip', ['netns', 'exec', to.name, 'iperf3', '-s', '-1', '-B', to.ip], { stdio: 'ignore' });
  const exited = new Promise((r) => srv.once('exit', r));
  try {
    for (let i = 0; i < 100 && !to.run('busybox', 'netstat', '-ltn').includes(':5201'); i++) await sleep(20);
    const out = JSON.parse(sh('ip', ['netns', 'exec', from.name, 'iperf3', '-c', to.ip, '-t', String(seconds), '-O', '1', '-J']));
    return { gbps: out.end.sum_received.bits_per_second / 1e9, retrans: out.end.sum_sent.retransmits, cpu: out.end.cpu_utilization_percent.host_total };
  } finally {
    srv.kill('SIGTERM');
    await exited;
  }
}
