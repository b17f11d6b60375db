// Issue 17: cross-host TCP throughput as a ratio of same-host throughput (goal >= 0.8), and
// issue 23: cross-host TCP over an IPv6 underlay against an IPv4 one (goal >= 0.9). Two host
// namespaces on an underlay bridge (198.18.30.0/24 and 2001:db8:62::/64 on the same ports, MTU
// 1500); on each, two cluster networks as the plugin plans them (dist/plan: bridgeSteps,
// vxlanDeviceSteps, vethSteps, the VXLAN guard) applied by the real executor: one whose VXLAN
// device sends from the host's IPv4 address (MTU 1450), one from its IPv6 address (MTU 1430,
// clusterMtu(1500, 6)); each remote endpoint's forwarding and neighbour entries from
// remoteEntrySteps (programmed directly here: how they get there from etcd is
// bench/cluster-sim.mjs and cluster-plugin.mjs). Containers are namespaces: a1 and a2 on host
// A's IPv4-underlay network, b1 on host B's; a6 and b6 on the IPv6-underlay one. Same-host is
// a1 -> a2, cross-host a1 -> b1 (IPv4 underlay) and a6 -> b6 (IPv6 underlay); iperf3, one TCP
// stream, interleaved.
//
//   flock /tmp/mynet-tier.lock node bench/cluster-throughput.mjs    (BENCH_TP_SECONDS, BENCH_TP_ROUNDS)
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { applyPlan } from '../dist/host/executor.js';
import { bridgeSteps, macFromIPv4, vethSteps } from '../dist/plan/link.js';
import { containerVethName, defaultBridgeName, hostVethName } from '../dist/plan/link-names.js';
import { guardCommands, guardFor } from '../dist/plan/vxlan-firewall.js';
import { nftOp } from '../dist/plan/nft.js';
import { remoteEntrySteps, vxlanDeviceSteps } from '../dist/plan/vxlan.js';
import { clusterMtu } from '../dist/rules/mtu.js';
import { destroyAll, intoContainer, iperf, netns, underlay, UNDERLAY6_PREFIX, UNDERLAY_PREFIX } from './cluster-lab.mjs';
import { goal, median, sh, table } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_TP_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_TP_ROUNDS ?? 5);
const log = pino({ level: 'silent' });
const hexId = () => randomBytes(32).toString('hex');
const VNI = 4242;
const GATEWAY_MAC = '02:6d:6e:00:00:01';
// The two networks: the same but for the underlay family their VXLAN runs over.
const NETS = [
  { family: 4, vni: VNI, prefix: '10.78.0', mtu: clusterMtu(1500, 4) },
  { family: 6, vni: VNI + 1, prefix: '10.223.6', mtu: clusterMtu(1500, 6) },
];

try { sh('iperf3', ['--version']); } catch { throw new Error('iperf3 is missing: run scripts/install-deps.sh'); }

const ul = underlay({ ipv6: true });
const hosts = [];
for (const [k, tag] of ['a', 'b'].entries()) {
  const ns = netns(`h${tag}`, { ipv6: true });
  const address = { 4: ul.plug(ns, `${UNDERLAY_PREFIX}.${k + 1}`), 6: ul.plug6(ns, `${UNDERLAY6_PREFIX}${k + 1}`) };
  const nets = {};
  for (const n of NETS) {
    const networkId = hexId(); // each host's dockerd has its own id for the network
    const bridge = defaultBridgeName(networkId);
    await applyPlan(ns.exec, bridgeSteps({ networkId, name: bridge, mtu: n.mtu, addresses: [`${n.prefix}.1/24`] }), log);
    ns.run('ip', 'link', 'set', 'dev', bridge, 'address', GATEWAY_MAC); // the anycast gateway
    await applyPlan(ns.exec, vxlanDeviceSteps({ networkId, cluster: `mhb${n.family}`, vni: n.vni, bridge, local: address[n.family], mtu: n.mtu }), log);
    nets[n.family] = { ...n, networkId, bridge, containers: [] };
  }
  hosts.push({ tag, ns, address, nets });
}
const [A, B] = hosts;
let nextIp = 2;
async function container(h, family, role) {
  const net = h.nets[family];
  const c = netns(role);
  const endpointId = hexId();
  const ip = `${net.prefix}.${nextIp++}`;
  const mac = macFromIPv4(`${ip}/24`);
  await applyPlan(h.ns.exec, vethSteps({ networkId: net.networkId, endpointId, bridge: net.bridge, hostIf: hostVethName(endpointId), containerIf: containerVethName(endpointId), mtu: net.mtu, mac }), log);
  intoContainer(h.ns, c, containerVethName(endpointId), `${ip}/24`, `${net.prefix}.1`);
  const ep = { ...c, ip, mac, host: h };
  net.containers.push(ep);
  return ep;
}
const a1 = await container(A, 4, 'a1');
const a2 = await container(A, 4, 'a2');
const b1 = await container(B, 4, 'b1');
const a6 = await container(A, 6, 'a6');
const b6 = await container(B, 6, 'b6');
for (const h of hosts) {
  const other = h === A ? B : A;
  for (const n of NETS) {
    const mine = h.nets[n.family];
    const peer = other.address[n.family];
    for (const e of other.nets[n.family].containers) await applyPlan(h.ns.exec, remoteEntrySteps(mine.networkId, { address: e.ip, mac: e.mac, underlay: peer }), log);
    const guard = guardFor(mine.networkId, { vni: n.vni, local: h.address[n.family] }, [peer]);
    await applyPlan(h.ns.exec, [{ what: 'vxlan guard', run: nftOp(guardCommands(guard)) }], log);
  }
}
sh('ip', ['netns', 'exec', a1.name, 'busybox', 'ping', '-c', '1', '-W', '2', b1.ip]);
sh('ip', ['netns', 'exec', a1.name, 'busybox', 'ping', '-c', '1', '-W', '2', a2.ip]);
sh('ip', ['netns', 'exec', a6.name, 'busybox', 'ping', '-c', '1', '-W', '2', b6.ip]);


const same = [];
const cross = [];
const cross6 = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    same.push(await iperf(a1, a2, SECONDS));
    cross.push(await iperf(a1, b1, SECONDS));
    cross6.push(await iperf(a6, b6, SECONDS));
  }
} finally {
  for (const h of hosts) h.ns.exec.close();
  destroyAll();
}

const s = median(same.map((x) => x.gbps));
const c = median(cross.map((x) => x.gbps));
const c6 = median(cross6.map((x) => x.gbps));
const ratio = c / s;
const ratio6 = c6 / c;
const row = (what, xs, m) => [what, m.toFixed(2), xs.map((x) => x.gbps.toFixed(2)).join(' '), xs.map((x) => x.retrans).join(' '), xs.map((x) => x.cpu.toFixed(0)).join(' ')];
console.log(`\nTCP, one iperf3 stream for ${SECONDS} s, ${ROUNDS} rounds interleaved (median); container MTU ${NETS[0].mtu} (IPv4 underlay) and ${NETS[1].mtu} (IPv6 underlay), underlay 1500\n`);
console.log(table(['path', 'Gbit/s (median)', 'runs', 'retransmits', 'sender CPU %'], [
  row('same host: a1 -> a2 on one bridge', same, s),
  row('cross host: a1 -> b1 over VXLAN, IPv4 underlay', cross, c),
  row('cross host: a6 -> b6 over VXLAN, IPv6 underlay', cross6, c6),
  ['ratio cross / same (goal >= 0.8)', ratio.toFixed(3), '', '', ''],
  ['ratio IPv6 underlay / IPv4 underlay (goal >= 0.9)', ratio6.toFixed(3), '', '', ''],
]));
goal('17. TCP cross-host / same-host (iperf3, ratio)', `${c.toFixed(2)} / ${s.toFixed(2)} Gbit/s (${ratio.toFixed(2)})`, '', '>= 0.8', ratio >= 0.8);
goal('23. TCP cross-host, IPv6 / IPv4 underlay (iperf3, ratio)', `${c6.toFixed(2)} / ${c.toFixed(2)} Gbit/s (${ratio6.toFixed(2)})`, '', '>= 0.9', ratio6 >= 0.9);
