/**
 * This host's WireGuard for encrypted cluster networks (issue 24): one interface, its key,
 * its record in etcd, and its peers kept equal to what etcd says about the other members.
 *
 * - `up()` (the first encrypted network): the interface (kernel device, or wireguard-go in user
 *   space, which detaches and lives on across plugin restarts like a kernel device), its key
 *   file and port, the tunnel address, MTU underlay - 60; then this host's peer record.
 * - Peers follow two prefixes, the peer records and the node presences (a record is believed
 *   only for a present member at its registered address: peer-record.ts judgePeers); every
 *   change re-judges the whole set and takes the interface to it (peer-plan.ts), one pass at a
 *   time. While either copy is not complete (etcd away) nothing is removed: the tunnels keep
 *   running on what was last known, as the VXLAN entries do (plane.ts).
 * - The plaintext VXLAN of encrypted networks is dropped by each network's guard
 *   (plan/vxlan-firewall.ts plaintextRule), made with the network, before its device.
 */
import type { Logger } from 'pino';
import { PrefixFollower } from '../../cluster/follower.js';
import type { Kv } from '../../cluster/kv.js';
import { keys } from '../../cluster/keys.js';
import { readRecord } from '../../cluster/records.js';
import { HostCommandError, PluginError, messageOf } from '../../errors.js';
import { type Executor, applyAll, applyPlan } from '../../host/executor.js';
import { wireguardMtu } from '../../rules/mtu.js';
import { bareAddress, familyOf } from '../../rules/address.js';
import type { Runner } from './capability.js';
import { type HostKey, loadOrCreateKey, newPrivateKey, writeKey } from './keyfile.js';
import { type Judged, PEERS_PREFIX, type PeerRecord, encodePeer, judgePeers, peerKey, readPeer } from './peer-record.js';
import {
  deleteInterfaceStep,
  endpointOf,
  interfaceCommands,
  interfaceSteps,
  parseWgShow,
  parseWgStats,
  peerCommands,
} from './peer-plan.js';
import type { PeerStatus } from './port.js';
import { type WgLink, wireguardDifferences } from './doctor.js';
import { WIREGUARD_ALIAS } from '../../plan/link-names.js';
import type { Difference } from '../../doctor/difference.js';

const peersKey = (peers: readonly PeerRecord[]): string =>
  peers.map((p) => `${p.node} ${p.publicKey} ${endpointOf(p)} ${p.tunnel}`).join('\n');

export interface WireGuardHostDeps {
  readonly kv: Kv;
  readonly backoffMs?: { readonly first: number; readonly max: number };
  readonly exec: Executor;
  /** Runs a command on this host (wg, wireguard-go) and answers its output. */
  readonly command: (argv: readonly string[], log: Logger) => Promise<string>;
  readonly log: Logger;
  readonly node: { readonly name: string; readonly address: string };
  readonly stateDir: string;
  readonly iface: string;
  readonly port: number;
  /** With its prefix ("198.18.170.1/24"). */
  readonly tunnelCidr: string;
  readonly underlayMtu: number;
  readonly runner: Runner;
  readonly now?: () => Date;
  /** The believed peers changed (a node, key, endpoint or tunnel address): the encrypted planes resync. */
  readonly onPeers?: () => void;
}

export class WireGuardHost {
  private key: HostKey | undefined;
  private peersFollower: PrefixFollower | undefined;
  private nodesFollower: PrefixFollower | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  /** What was judged last (status, doctor): peers programmed and records refused. */
  last: Judged = { peers: [], refused: [] };

  constructor(private readonly d: WireGuardHostDeps) {}

  get tunnelAddress(): string {
    return bareAddress(this.d.tunnelCidr);
  }

  get publicKey(): string | undefined {
    return this.key?.publicKey;
  }

  /** The private key's file (its path only: the key itself is never read out of it here). */
  get keyPath(): string | undefined {
    return this.key?.path;
  }

  /** The interface, its key and address, this host's record; then the peers follow etcd. */
  async up(): Promise<void> {
    const { iface, log } = this.d;
    this.key = loadOrCreateKey(this.d.stateDir);
    const link = await this.link();
    if (link.present && link.alias !== WIREGUARD_ALIAS)
      throw new PluginError(
        'CONFLICT',
        `wireguard: interface ${iface} exists and is not mynet's (no alias "${WIREGUARD_ALIAS}"); set MYNET_WIREGUARD_INTERFACE to another name`,
      );
    if (!link.present) {
      // wireguard-go detaches (its own stdio on /dev/null) and exits when the interface is deleted.
      if (this.d.runner === 'userspace') await this.d.command(['wireguard-go', iface], log);
      else
        await applyPlan(
          this.d.exec,
          [{ what: `WireGuard interface ${iface}`, run: { kind: 'ip', args: ['link', 'add', 'dev', iface, 'type', 'wireguard'] } }],
          log,
        );
    }
    for (const c of interfaceCommands(iface, this.key.path, this.d.port)) await this.d.command(c, log);
    await applyPlan(
      this.d.exec,
      interfaceSteps(iface, this.d.tunnelCidr, wireguardMtu(this.d.underlayMtu, familyOf(this.d.node.address))),
      log,
    );
    await this.publish();
    if (!this.peersFollower) {
      // Judged when a copy changes, and when it becomes complete (the changes of a list come just before).
      const follow = (prefix: string): PrefixFollower => {
        const f = new PrefixFollower({
          kv: this.d.kv,
          prefix,
          onChanges: () => this.schedule(),
          onState: (s) => s === 'synced' && this.schedule(),
          ...(this.d.backoffMs && { backoffMs: this.d.backoffMs }),
        });
        f.start();
        return f;
      };
      this.peersFollower = follow(PEERS_PREFIX);
      this.nodesFollower = follow(keys.nodes());
    }
    log.info(
      { iface, runner: this.d.runner, publicKey: this.key.publicKey, tunnel: this.d.tunnelCidr, port: this.d.port },
      'wireguard: interface up',
    );
  }

  /**
   * `mynet cluster rotate-key`: a new key pair (the file replaced whole, wireguard/keyfile.ts),
   * the interface told, the record republished. The other hosts program the new key from the
   * watch (peer-plan.ts replaces the old key's peer); until they do, handshakes with this host
   * fail and the tunnel carries nothing (the gap is the watch's latency and one handshake).
   */
  async rotate(): Promise<string> {
    if (!this.key) throw new PluginError('INVALID_REQUEST', 'wireguard: the interface is not up; nothing to rotate');
    const { iface, log } = this.d;
    const key = writeKey(this.d.stateDir, newPrivateKey());
    this.key = key;
    for (const c of interfaceCommands(iface, key.path, this.d.port)) await this.d.command(c, log);
    await this.publish();
    log.info({ iface, publicKey: key.publicKey }, 'wireguard: key rotated and republished');
    return key.publicKey;
  }

  /** This host's record (public key, port, addresses): never on the presence lease. */
  async publish(): Promise<void> {
    if (!this.key) return;
    const r: PeerRecord = {
      v: 1,
      node: this.d.node.name,
      publicKey: this.key.publicKey,
      port: this.d.port,
      underlay: this.d.node.address,
      tunnel: this.tunnelAddress,
      updatedAt: (this.d.now?.() ?? new Date()).toISOString(),
    };
    await this.d.kv.put(peerKey(r.node), encodePeer(r));
  }

  /** The peers as etcd says now, or undefined while either copy is incomplete. */
  private judged(): Judged | undefined {
    const p = this.peersFollower;
    const n = this.nodesFollower;
    if (!this.key || !p || !n || p.current !== 'synced' || n.current !== 'synced') return undefined;
    const registered = new Map<string, string>();
    for (const it of n.mirror.entries()) {
      const r = readRecord('node', it.key, it.value);
      if (r.ok) registered.set(r.record.name, r.record.address);
    }
    const records: PeerRecord[] = [];
    for (const it of p.mirror.entries()) {
      const r = readPeer(it.key, it.value);
      if (r.ok) records.push(r.record);
      else this.d.log.warn({ problem: r.problem }, 'wireguard: a peer record in etcd does not fit and is ignored');
    }
    return judgePeers(
      records,
      { node: this.d.node.name, publicKey: this.key.publicKey, underlay: this.d.node.address, tunnelCidr: this.d.tunnelCidr },
      registered,
    );
  }

  private schedule(): void {
    this.queue = this.queue
      .then(async () => void (await this.sync()))
      .catch((err: unknown) => {
        this.d.log.error({ err: messageOf(err) }, 'wireguard: programming the peers failed; the next change or the doctor retries');
      });
  }

  /** Reads the interface's peers and takes them to what etcd says. Answers the commands run. */
  async sync(): Promise<readonly (readonly string[])[]> {
    if (this.stopped) return [];
    const j = this.judged();
    if (!j) return [];
    for (const r of j.refused)
      if (!this.last.refused.some((x) => x.record.node === r.record.node && x.reason === r.reason))
        this.d.log.warn(
          { node: r.record.node, reason: r.reason, detail: r.detail },
          'wireguard: a peer record is not believed; not programmed',
        );
    const changed = peersKey(j.peers) !== peersKey(this.last.peers);
    this.last = j;
    const cmds = peerCommands(this.d.iface, j.peers, await this.observe());
    for (const c of cmds) await this.d.command(c, this.d.log);
    if (changed) this.d.onPeers?.();
    return cmds;
  }

  async observe(): Promise<ReturnType<typeof parseWgShow>> {
    const { iface, log } = this.d;
    // Never `wg show dump` or `wg showconf`: both print the private key.
    const [endpoints, allowed] = await Promise.all([
      this.d.command(['wg', 'show', iface, 'endpoints'], log),
      this.d.command(['wg', 'show', iface, 'allowed-ips'], log),
    ]);
    return parseWgShow(endpoints, allowed);
  }

  /**
   * The doctor's part (wireguard/doctor.ts): the interface's peers against etcd's, each
   * difference with its `wg` repair, run by the reconciler by its policy. An interface not marked
   * as mynet's is listed and never touched; while etcd is not followed nothing is compared.
   */
  async differences(): Promise<readonly Difference[]> {
    await this.queue;
    const { iface } = this.d;
    const link = await this.link();
    const judged = this.judged();
    const found = wireguardDifferences(
      iface,
      link,
      judged,
      link.present && link.alias === WIREGUARD_ALIAS ? await this.observe() : new Map(),
    );
    if (!judged)
      found.push({ kind: 'drift', object: `wireguard ${iface}`, detail: 'peers not compared: etcd is not followed right now', fix: [] });
    return found;
  }

  /** The interface as the kernel has it. Only "does not exist" is absence: a failed or timed-out `ip` is an error, not a cue to make it again. */
  private async link(): Promise<WgLink> {
    let text: string;
    try {
      text = await this.d.command(['ip', '-j', 'link', 'show', 'dev', this.d.iface], this.d.log);
    } catch (err) {
      if (err instanceof HostCommandError && /does not exist/.test(err.stderr)) return { present: false };
      throw err;
    }
    const [l] = JSON.parse(text || '[]') as { ifalias?: string }[];
    return l ? { present: true, alias: l.ifalias } : { present: false };
  }

  /** Each believed peer with its last handshake and bytes (`mynet status`). */
  async peerStatus(): Promise<PeerStatus[]> {
    const { iface, log } = this.d;
    const [handshakes, transfer] = await Promise.all([
      this.d.command(['wg', 'show', iface, 'latest-handshakes'], log),
      this.d.command(['wg', 'show', iface, 'transfer'], log),
    ]);
    const stats = parseWgStats(handshakes, transfer);
    return this.last.peers.map((p) => {
      const s = stats.get(p.publicKey);
      return {
        node: p.node,
        endpoint: endpointOf(p),
        tunnel: p.tunnel,
        programmed: s !== undefined,
        lastHandshake: s && s.lastHandshake > 0 ? new Date(s.lastHandshake * 1000).toISOString() : undefined,
        rxBytes: s?.rxBytes ?? 0,
        txBytes: s?.txBytes ?? 0,
      };
    });
  }

  /** The tunnel address of a node's peer, if it is believed: an encrypted network's VXLAN goes there. */
  tunnelOf(node: string): string | undefined {
    return this.last.peers.find((p) => p.node === node)?.tunnel;
  }

  /** Resolves when every change received so far is programmed. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Stops following etcd (shutdown): the interface and its peers stay, as kernel devices do across restarts. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.peersFollower?.stop(), this.nodesFollower?.stop()]);
    await this.queue;
  }

  /**
   * The last encrypted network is gone: no longer a peer of anyone (this host's record deleted
   * while it is still the one written here), and the interface deleted (wireguard-go exits with it).
   */
  async down(): Promise<void> {
    await this.stop();
    const key = this.key;
    this.key = undefined;
    if (key) {
      const item = await this.d.kv.get(peerKey(this.d.node.name));
      const r = item && readPeer(item.key, item.value);
      if (item && r?.ok && r.record.publicKey === key.publicKey) await this.d.kv.deleteIfValue(item.key, item.value);
    }
    await applyAll(this.d.exec, [deleteInterfaceStep(this.d.iface)], this.d.log);
    this.d.log.info({ iface: this.d.iface }, 'wireguard: no encrypted network left; interface removed');
  }
}
