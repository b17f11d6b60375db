/**
 * A stranger on the underlay sends VXLAN with a cluster network's VNI at one host's container
 * (issue 17's guard; issue 23 over an IPv6 underlay): its own VXLAN device aimed at the host,
 * a counter inside the container for its inner source address. First the stranger is made a
 * member of the guard's set (control: its frames arrive, so a drop after is the guard's), then
 * taken out, and the same frames are sent again. The caller asserts on the counts.
 */
import { nftOp } from '../../src/plan/nft.js';
import { dropCounter, guardMemberCommands } from '../../src/plan/vxlan-firewall.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { silentLog, type TestNetns } from '../helpers/netns.js';
import { chainCounter, namedCounter, rxPackets } from './cluster-checks.js';
import type { Container } from './dockerd-moves.js';

export interface ForgedVxlan {
  /** Frames that reached the container while the stranger was a member (the control). */
  readonly asMember: number;
  /** Frames that reached the container, and its host's VXLAN device, once it was not. */
  readonly toContainer: number;
  readonly toDevice: number;
  /** What the guard's drop counter counted meanwhile (5 frames sent). */
  readonly dropped: number;
}

export async function forgeVxlan(o: {
  readonly stranger: TestNetns;
  readonly strangerAddress: string;
  /** The container's host: its namespace and its underlay address. */
  readonly host: { readonly ns: TestNetns; readonly address: string };
  /** The host's network id (its device and guard) and the network's VNI. */
  readonly networkId: string;
  readonly vni: number;
  readonly to: Container;
  /** The stranger's inner address with its prefix length, inside the network's subnet. */
  readonly fake: string;
  /** The names' prefix: the stranger's device `<tag>vx`, the container's table `inet <tag>`. */
  readonly tag: string;
}): Promise<ForgedVxlan> {
  const { stranger, host, to } = o;
  const dev = `${o.tag}vx`;
  const table = `inet ${o.tag.replace(/-$/, '')}`;
  const fake = o.fake.split('/')[0] as string;
  await stranger.run([
    'ip',
    'link',
    'add',
    dev,
    'type',
    'vxlan',
    'id',
    String(o.vni),
    'local',
    o.strangerAddress,
    'dstport',
    '4789',
    'nolearning',
  ]);
  await stranger.run(['ip', 'addr', 'add', o.fake, 'dev', dev]);
  await stranger.run(['ip', 'link', 'set', dev, 'up']);
  await stranger.run(['ip', 'neigh', 'replace', to.ip, 'lladdr', to.mac, 'dev', dev, 'nud', 'permanent']);
  await stranger.run(['bridge', 'fdb', 'append', to.mac, 'dev', dev, 'dst', host.address, 'self', 'permanent']);
  await to.box.exec.command(
    ['nft', '-f', '-'],
    silentLog,
    `add table ${table}\nadd chain ${table} in { type filter hook input priority 0; }\nadd rule ${table} in ip saddr ${fake} counter`,
  );
  const inContainer = (): Promise<number> => chainCounter(to.box, table, 'in');
  const send = (): Promise<boolean> => stranger.succeeds(['busybox', 'ping', '-c', '5', '-i', '0.2', '-W', '1', to.ip]);
  // The plugin's reconcile (every 5 s) puts the member set back as etcd says, which may take
  // the stranger out mid-send: tried up to 3 times, and any arrival proves the point.
  let asMember = 0;
  for (let i = 0; i < 3 && asMember === 0; i++) {
    await host.ns.exec.run(nftOp(guardMemberCommands(o.networkId, [o.strangerAddress], [])), silentLog);
    const start = await inContainer();
    await send();
    asMember = (await inContainer()) - start;
  }
  await host.ns.exec.run(nftOp(guardMemberCommands(o.networkId, [], [o.strangerAddress])), silentLog);
  const before = await inContainer();
  const guard = await namedCounter(host.ns, 'inet mynet', dropCounter(o.networkId));
  const rx = await rxPackets(host.ns, vxlanName(o.networkId));
  await send();
  return {
    asMember,
    toContainer: (await inContainer()) - before,
    toDevice: (await rxPackets(host.ns, vxlanName(o.networkId))) - rx,
    dropped: (await namedCounter(host.ns, 'inet mynet', dropCounter(o.networkId))) - guard,
  };
}
