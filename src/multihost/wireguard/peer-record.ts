/**
 * The WireGuard peer records in etcd (issue 24): `/mynet/v1/wireguard/<node>` holds a host's
 * public key, listen port, underlay address and tunnel address, beside its other records and
 * never on the presence lease (a lost lease must not tear the tunnels down). Like every record,
 * it is a stranger's input: its shape is checked here (readPeer), and what it means against the
 * node records (judgePeers) before a peer reaches `wg`.
 */
import { invalid } from '../../errors.js';
import { parseIp } from '../../ip/address.js';
import { contains, parseCidr } from '../../ip/cidr.js';
import { underlayProblem, unicastProblem } from '../../rules/address.js';
import { NODE_NAME, checkNodeName } from '../../rules/names.js';
import { PREFIX } from '../../cluster/keys.js';
import { isWgKey } from './keyfile.js';
import { PORT_MAX, PORT_MIN } from './settings.js';

export const PEERS_PREFIX = `${PREFIX}wireguard/`;
export const peerKey = (node: string): string => `${PEERS_PREFIX}${checkNodeName('node', node)}`;

export interface PeerRecord {
  readonly v: 1;
  readonly node: string;
  readonly publicKey: string;
  readonly port: number;
  /** Where the peer's WireGuard packets go: must be the node's registered address. */
  readonly underlay: string;
  /** The peer's tunnel address (bare): VXLAN of encrypted networks goes to it. */
  readonly tunnel: string;
  readonly updatedAt: string;
}

/** A record is ~250 bytes; anything much larger is someone else's write. */
export const PEER_MAX_BYTES = 1024;

export type PeerRead = { readonly ok: true; readonly record: PeerRecord } | { readonly ok: false; readonly problem: string };

const unicast4 = (v: unknown): string | undefined => {
  if (typeof v !== 'string' || v.includes('/') || parseIp(v)?.family !== 4) return 'must be an IPv4 address';
  const p = unicastProblem(v);
  return p ? `${p}, not a host's` : undefined;
};

/**
 * The underlay: IPv4 or IPv6 (issue 23), as the node records check it (canonical IPv6: it is
 * compared as text with the registered address, and is the endpoint `wg` prints back).
 */
const underlay = (v: unknown): string | undefined => {
  if (typeof v !== 'string' || v.includes('/') || !parseIp(v)) return 'must be an IPv4 or IPv6 address';
  const p = underlayProblem(v);
  return p ? `${p}, not a host's` : undefined;
};

export function readPeer(key: string, bytes: string): PeerRead {
  const name = key.startsWith(PEERS_PREFIX) ? key.slice(PEERS_PREFIX.length) : '';
  if (!NODE_NAME.test(name)) return { ok: false, problem: `${key}: not a WireGuard peer key` };
  if (bytes.length > PEER_MAX_BYTES)
    return { ok: false, problem: `${key}: ${bytes.length} bytes, over the ${PEER_MAX_BYTES} a peer record takes` };
  let r: Record<string, unknown>;
  try {
    const data: unknown = JSON.parse(bytes);
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, problem: `${key}: / must be an object` };
    r = data as Record<string, unknown>;
  } catch {
    return { ok: false, problem: `${key}: not JSON` };
  }
  const problems: [string, string | undefined][] = [
    ['v', r.v === 1 ? undefined : 'must be 1 (this mynet reads layout v1 records only)'],
    ['node', r.node === name ? undefined : `must be the key's node name (${name})`],
    ['publicKey', isWgKey(r.publicKey) ? undefined : 'must be a WireGuard key (32 bytes in base64)'],
    [
      'port',
      typeof r.port === 'number' && Number.isInteger(r.port) && r.port >= PORT_MIN && r.port <= PORT_MAX
        ? undefined
        : `must be an integer from ${PORT_MIN} to ${PORT_MAX}`,
    ],
    ['underlay', underlay(r.underlay)],
    ['tunnel', unicast4(r.tunnel)],
    ['updatedAt', typeof r.updatedAt === 'string' && !Number.isNaN(Date.parse(r.updatedAt)) ? undefined : 'must be an ISO time'],
  ];
  const bad = problems.find(([, p]) => p !== undefined);
  if (bad) return { ok: false, problem: `${key}: /${bad[0]} ${bad[1] as string}` };
  return { ok: true, record: r as unknown as PeerRecord };
}

/** The bytes this host writes, read back through the readers' check first (it never writes what they refuse). */
export function encodePeer(r: PeerRecord): string {
  const bytes = JSON.stringify(r);
  const back = readPeer(peerKey(r.node), bytes);
  if (!back.ok) throw invalid('wireguard record', `this host would write a record its readers refuse: ${back.problem}`);
  return bytes;
}

export interface Self {
  readonly node: string;
  readonly publicKey: string;
  readonly underlay: string;
  /** This host's tunnel address with its prefix: a peer's tunnel address must be inside it. */
  readonly tunnelCidr: string;
}

export type PeerRefusal = 'not-member' | 'underlay-mismatch' | 'self' | 'outside-tunnel' | 'duplicate';

export interface Judged {
  readonly peers: readonly PeerRecord[];
  readonly refused: readonly { readonly record: PeerRecord; readonly reason: PeerRefusal; readonly detail: string }[];
}

/**
 * Which records become peers. `registered` is the node records' addresses (present nodes): a
 * record is believed only for a present member, at the address it registered. A key, tunnel or
 * underlay address held by two records is believed for neither (one of them is a copy, and this
 * host cannot tell which).
 */
export function judgePeers(records: readonly PeerRecord[], self: Self, registered: ReadonlyMap<string, string>): Judged {
  const refused: Judged['refused'][number][] = [];
  const c = parseCidr(self.tunnelCidr);
  const selfTunnel = c.ok ? c.addr.value : -1n;
  const candidates: PeerRecord[] = [];
  for (const r of records) {
    if (r.node === self.node) continue;
    const at = registered.get(r.node);
    const t = parseIp(r.tunnel);
    if (at === undefined)
      refused.push({ record: r, reason: 'not-member', detail: `node ${r.node} has no presence record (not a member now)` });
    else if (at !== r.underlay)
      refused.push({
        record: r,
        reason: 'underlay-mismatch',
        detail: `underlay ${r.underlay} is not ${at}, the address node ${r.node} registered`,
      });
    else if (r.publicKey === self.publicKey || r.underlay === self.underlay || t?.value === selfTunnel)
      refused.push({ record: r, reason: 'self', detail: "names this host's key or address" });
    else if (!c.ok || !t || !contains(c.cidr, t))
      refused.push({
        record: r,
        reason: 'outside-tunnel',
        detail: `tunnel ${r.tunnel} is outside this host's tunnel network ${self.tunnelCidr}`,
      });
    else candidates.push(r);
  }
  const count = (f: (r: PeerRecord) => string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const r of candidates) m.set(f(r), (m.get(f(r)) ?? 0) + 1);
    return m;
  };
  const keys = count((r) => r.publicKey);
  const tunnels = count((r) => r.tunnel);
  const underlays = count((r) => r.underlay);
  const peers: PeerRecord[] = [];
  for (const r of candidates) {
    const dup =
      (keys.get(r.publicKey) ?? 0) > 1
        ? 'public key'
        : (tunnels.get(r.tunnel) ?? 0) > 1
          ? 'tunnel address'
          : (underlays.get(r.underlay) ?? 0) > 1
            ? 'underlay address'
            : undefined;
    if (dup) refused.push({ record: r, reason: 'duplicate', detail: `its ${dup} is another node's too` });
    else peers.push(r);
  }
  return { peers: peers.sort((a, b) => a.node.localeCompare(b.node)), refused };
}
