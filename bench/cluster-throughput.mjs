// Issue 17: cross-host TCP throughput as a ratio of same-host throughput (goal >= 0.8). Two
// host namespaces on an underlay bridge (198.18.30.0/24, MTU 1500); on each, the cluster
// network's bridge and VXLAN device as the plugin plans them (dist/plan: bridgeSteps,
// vxlanDeviceSteps, vethSteps at MTU 1450, the VXLAN guard) applied by the real executor, and
// each remote endpoint's forwarding and neighbour entries from remoteEntrySteps (programmed
// directly here: how they get there from etcd is bench/cluster-sim.mjs and cluster-plugin.mjs).
// Containers are namespaces: a1 and a2 on host A, b1 on host B. Same-host is a1 -> a2 on A's
// bridge, cross-host a1 -> b1 through VXLAN; iperf3, one TCP stream, interleaved.
//
//   flock /tmp/mynet-tier.lock node bench/cluster-throughput.mjs    (BENCH_TP_SECONDS, BENCH_TP_ROUNDS)
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { applyPlan } from '../dist/host/executor.js';
import { bridgeSteps, macFromIPv4, vethSteps } from '../dist/plan/link.js';
import { containerVethName, defaultBridgeName, hostVethName } from '../dist/plan/link-names.js';
import { guardCommands } from '../dist/plan/vxlan-firewall.js';
import { nftOp } from '../dist/plan/nft.js';
import { remoteEntrySteps, vxlanDeviceSteps } from '../dist/plan/vxlan.js';
import { destroyAll, intoContainer, iperf, netns, underlay, UNDERLAY_PREFIX } from './cluster-lab.mjs';
import { goal, median, sh, table } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_TP_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_TP_ROUNDS ?? 5);
const log = pino({ level: 'silent' });
const hexId = () => randomBytes(32).toString('hex');
const MTU = 1450;
const VNI = 4242;
const GATEWAY = '10.78.0.1';
const GATEWAY_MAC = '02:6d:6e:00:00:01';

try { sh('iperf3', ['--version']); } catch { throw new Error('iperf3 is missing: run scripts/install-deps.sh'); }

const ul = underlay();
const hosts = [];
for (const [k, tag] of ['a', 'b'].entries()) {
  const ns = netns(`h${tag}`);
  const address = ul.plug(ns, `${UNDERLAY_PREFIX}.${k + 1}`);
  const networkId = hexId(); // each host's dockerd has its own id for the network
  const bridge = defaultBridgeName(networkId);
  await applyPlan(ns.exec, bridgeSteps({ networkId, name: bridge, mtu: MTU, addresses: [`${GATEWAY}/24`] }), log);
  ns.run('ip', 'link', 'set', 'dev', bridge, 'address', GATEWAY_MAC); // the anycast gateway
  await applyPlan(ns.exec, vxlanDeviceSteps({ networkId, cluster: 'mhb', vni: VNI, bridge, local: address, mtu: MTU }), log);
  hosts.push({ tag, ns, address, networkId, bridge, containers: [] });
}
const [A, B] = hosts;
let nextIp = 2;
async function container(h, role) {
  const c = netns(role);
  const endpointId = hexId();
  const ip = `10.78.0.${nextIp++}`;
  const mac = macFromIPv4(`${ip}/24`);
  await applyPlan(h.ns.exec, vethSteps({ networkId: h.networkId, endpointId, bridge: h.bridge, hostIf: hostVethName(endpointId), containerIf: containerVethName(endpointId), mtu: MTU, mac }), log);
  intoContainer(h.ns, c, containerVethName(endpointId), `${ip}/24`, GATEWAY);
  const ep = { ...c, ip, mac, host: h };
  h.containers.push(ep);
  return ep;
}
const a1 = await container(A, 'a1');
const a2 = await container(A, 'a2');
const b1 = await container(B, 'b1');
for (const h of hosts) {
  const other = h === A ? B : A;
  for (const e of other.containers) await applyPlan(h.ns.exec, remoteEntrySteps(h.networkId, { address: e.ip, mac: e.mac, underlay: other.address }), log);
  await applyPlan(h.ns.exec, [{ what: 'vxlan guard', run: nftOp(guardCommands({ networkId: h.networkId, vni: VNI, peers: [other.address] })) }], log);
}
sh('ip', ['netns', 'exec', a1.name, 'busybox', 'ping', '-c', '1', '-W', '2', b1.ip]);
sh('ip', ['netns', 'exec', a1.name, 'busybox', 'ping', '-c', '1', '-W', '2', a2.ip]);


const same = [];
const cross = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    same.push(await iperf(a1, a2, SECONDS));
    cross.push(await iperf(a1, b1, SECONDS));
  }
} finally {
  for (const h of hosts) h.ns.exec.close();
  destroyAll();
}

const s = median(same.map((x) => x.gbps));
const c = median(cross.map((x) => x.gbps));
const ratio = c / s;
console.log(`\nTCP, one iperf3 stream for ${SECONDS} s, ${ROUNDS} rounds interleaved (median); container MTU ${MTU}, underlay 1500\n`);
console.log(table(['path', 'Gbit/s (median)', 'runs', 'retransmits', 'sender CPU %'], [
  ['same host: a1 -> a2 on one bridge', s.toFixed(2), same.map((x) => x.gbps.toFixed(2)).join(' '), same.map((x) => x.retrans).join(' '), same.map((x) => x.cpu.toFixed(0)).join(' ')],
  ['cross host: a1 -> b1 over VXLAN', c.toFixed(2), cross.map((x) => x.gbps.toFixed(2)).join(' '), cross.map((x) => x.retrans).join(' '), cross.map((x) => x.cpu.toFixed(0)).join(' ')],
  ['ratio cross / same (goal >= 0.8)', ratio.toFixed(3), '', '', ''],
]));
goal('17. TCP cross-host / same-host (iperf3, ratio)', `${c.toFixed(2)} / ${s.toFixed(2)} Gbit/s (${ratio.toFixed(2)})`, '', '>= 0.8', ratio >= 0.8);
