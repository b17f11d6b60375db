/**
 * The WireGuard interface and its peers as plans (issue 24), pure: what `wg` should be told for
 * the peers this host believes (peer-record.ts judgePeers) against what the interface holds.
 * `wg` commands are argv lists for the runner (wireguard/host.ts); `ip` and nft go through the
 * executor as host steps. Nothing here ever names the private key: `wg` reads it from its file.
 */
import type { HostStep } from '../../plan/step.js';
import type { PeerRecord } from './peer-record.js';
import { isWgKey } from './keyfile.js';
import { WIREGUARD_ALIAS } from '../../plan/link-names.js';
import { familyOf } from '../../rules/address.js';

/** One peer as the interface holds it: its endpoint and allowed addresses. */
export interface ObservedPeer {
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
}

/** `wg show <if> endpoints` and `wg show <if> allowed-ips`, by public key (lines "key\tvalue"). */
export function parseWgShow(endpoints: string, allowedIps: string): Map<string, ObservedPeer> {
  const out = new Map<string, ObservedPeer>();
  const lines = (t: string): [string, string][] =>
    t
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map((l) => {
        const [k = '', v = ''] = l.split('\t');
        return [k, v];
      });
  for (const [k, v] of lines(endpoints)) if (isWgKey(k)) out.set(k, { endpoint: v === '(none)' ? undefined : v, allowedIps: [] });
  for (const [k, v] of lines(allowedIps)) {
    if (!isWgKey(k)) continue;
    const ips = v === '(none)' ? [] : v.split(' ').filter((x) => x !== '');
    out.set(k, { endpoint: out.get(k)?.endpoint, allowedIps: ips });
  }
  return out;
}

export type WgCommand = readonly string[];

/** A peer's endpoint as `wg` takes and prints it: an IPv6 address in brackets ("[2001:db8::2]:51820"). */
export const endpointOf = (p: Pick<PeerRecord, 'underlay' | 'port'>): string =>
  `${familyOf(p.underlay) === 6 ? `[${p.underlay}]` : p.underlay}:${p.port}`;

/** `wg set` argv that makes a peer as its record says (`allowed-ips` replaces the list: an old tunnel address goes with it). */
export const setPeerCommand = (iface: string, p: PeerRecord): WgCommand => [
  'wg',
  'set',
  iface,
  'peer',
  p.publicKey,
  'endpoint',
  endpointOf(p),
  'allowed-ips',
  `${p.tunnel}/32`,
  'persistent-keepalive',
  '25',
];

export const removePeerCommand = (iface: string, key: string): WgCommand => ['wg', 'set', iface, 'peer', key, 'remove'];

/** Why the interface's peer is not as its record says (endpoint, allowed addresses), or undefined. */
export function peerDrift(p: PeerRecord, o: ObservedPeer): string | undefined {
  const endpoint = endpointOf(p);
  const allowed = `${p.tunnel}/32`;
  const wrong: string[] = [];
  if (o.endpoint !== endpoint) wrong.push(`endpoint ${o.endpoint ?? 'none'}, not ${endpoint}`);
  if (o.allowedIps.length !== 1 || o.allowedIps[0] !== allowed)
    wrong.push(`allowed-ips ${o.allowedIps.join(' ') || 'none'}, not ${allowed}`);
  return wrong.length ? wrong.join(', ') : undefined;
}

/** The `wg set` commands that take the interface's peers to `peers`. */
export function peerCommands(iface: string, peers: readonly PeerRecord[], observed: ReadonlyMap<string, ObservedPeer>): WgCommand[] {
  const out: WgCommand[] = [];
  const wanted = new Set(peers.map((p) => p.publicKey));
  for (const key of [...observed.keys()].sort()) if (!wanted.has(key)) out.push(removePeerCommand(iface, key));
  for (const p of peers) {
    const o = observed.get(p.publicKey);
    if (!o || peerDrift(p, o) !== undefined) out.push(setPeerCommand(iface, p));
  }
  return out;
}

/** After the interface exists: its key file, port, tunnel address, MTU, up. */
export function interfaceCommands(iface: string, keyPath: string, port: number): WgCommand[] {
  return [['wg', 'set', iface, 'private-key', keyPath, 'listen-port', String(port)]];
}

export function interfaceSteps(iface: string, tunnelCidr: string, mtu: number): HostStep[] {
  return [
    // The mark the doctor and up() look for before touching an interface of this name.
    { what: `${iface} marked as mynet's`, run: { kind: 'ip', args: ['link', 'set', 'dev', iface, 'alias', WIREGUARD_ALIAS] } },
    { what: `tunnel address ${tunnelCidr} on ${iface}`, run: { kind: 'ip', args: ['addr', 'replace', tunnelCidr, 'dev', iface] } },
    { what: `${iface} at MTU ${mtu}, up`, run: { kind: 'ip', args: ['link', 'set', 'dev', iface, 'mtu', String(mtu), 'up'] } },
  ];
}

/** The interface removed (the last encrypted network gone); absent counts as done. */
export const deleteInterfaceStep = (iface: string): HostStep => ({
  what: `remove WireGuard interface ${iface}`,
  run: { kind: 'ip', args: ['link', 'del', iface], absentOk: true },
});

/** One peer's counters as `wg show` gives them: last handshake (unix seconds, 0: never), bytes received and sent. */
export interface PeerStats {
  readonly lastHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
}

/** `wg show <if> latest-handshakes` ("key\tseconds") and `wg show <if> transfer` ("key\trx\ttx"), by public key. */
export function parseWgStats(handshakes: string, transfer: string): Map<string, PeerStats> {
  const out = new Map<string, PeerStats>();
  const num = (v: string | undefined): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : 0);
  const rows = (t: string): string[][] =>
    t
      .split('\n')
      .map((l) => l.trim().split('\t'))
      .filter((r) => isWgKey(r[0]));
  for (const [k = '', s] of rows(handshakes)) out.set(k, { lastHandshake: num(s), rxBytes: 0, txBytes: 0 });
  for (const [k = '', rx, tx] of rows(transfer))
    out.set(k, { lastHandshake: out.get(k)?.lastHandshake ?? 0, rxBytes: num(rx), txBytes: num(tx) });
  return out;
}
