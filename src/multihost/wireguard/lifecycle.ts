/**
 * This host's WireGuard, brought up by the first encrypted cluster network and down with the
 * last one (issue 24): the agent calls `ensure` and `release` (networks.ts), one at a time in the
 * order asked. What runs the interface (kernel or wireguard-go) is decided at each `ensure` from
 * the setting and what is installed (capability.ts); a host that cannot encrypt was refused at
 * create, so a refusal here means something was uninstalled since: logged, the networks stay
 * unreachable across hosts rather than falling back to plaintext.
 */
import { PluginError, messageOf } from '../../errors.js';
import { bareAddress } from '../../rules/address.js';
import { type HostAbilities, encryptionAbility } from './capability.js';
import { WireGuardHost, type WireGuardHostDeps } from './host.js';
import type { Judged } from './peer-record.js';
import type { WireGuardPort } from './port.js';
import type { WireGuardSettings } from './settings.js';

/** The host's deps but those decided here: the interface's name and port (settings) and its runner (at each ensure). */
export interface LifecycleOptions extends Omit<WireGuardHostDeps, 'iface' | 'port' | 'runner' | 'onPeers' | 'now'> {
  readonly settings: WireGuardSettings;
  readonly probe: () => HostAbilities;
}

export class WireGuardLifecycle implements WireGuardPort {
  private host: WireGuardHost | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly o: LifecycleOptions) {}

  ability(): ReturnType<WireGuardPort['ability']> {
    return encryptionAbility(this.o.settings, this.o.probe());
  }

  get tunnelAddress(): string {
    return bareAddress(this.o.tunnelCidr);
  }

  get iface(): string {
    return this.o.settings.iface;
  }

  get judged(): Judged {
    return this.host?.last ?? { peers: [], refused: [] };
  }

  /** The WireGuardHost, for status and tests; undefined while no encrypted network is up. */
  get current(): WireGuardHost | undefined {
    return this.host;
  }

  async status(): ReturnType<WireGuardPort['status']> {
    const host = this.host;
    return host ? { iface: this.iface, peers: await host.peerStatus() } : undefined;
  }

  /** After whatever was asked before it, so it never compares an interface half made or half removed. */
  differences(): ReturnType<WireGuardPort['differences']> {
    return this.queue.then(() => this.host?.differences() ?? []);
  }

  onPeers(listener: () => void): void {
    this.listeners.push(listener);
  }

  tunnelAt(underlay: string): string | undefined {
    return this.host?.last.peers.find((p) => p.underlay === underlay)?.tunnel;
  }

  /** Never rejects: a failure is logged, and the next network up (or a restart) tries again. */
  private run(what: string, fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue
      .then(fn)
      .catch((err: unknown) =>
        this.o.log.error({ err: messageOf(err) }, `wireguard: ${what} failed; encrypted networks do not reach other hosts`),
      );
    return this.queue;
  }

  ensure(): Promise<void> {
    return this.run('bringing the interface up', async () => {
      if (this.host) return;
      const ability = this.ability();
      if (!ability.ok) throw new Error(ability.refusal);
      const o = this.o;
      const { settings, probe: _probe, ...deps } = o;
      const host = new WireGuardHost({
        ...deps,
        iface: settings.iface,
        port: settings.port,
        runner: ability.runner,
        onPeers: () => this.listeners.forEach((f) => f()),
      });
      // Set first: the peers judged during up() are asked for by the planes (tunnelAt).
      this.host = host;
      try {
        await host.up();
      } catch (err) {
        this.host = undefined;
        await host.stop();
        throw err;
      }
    });
  }

  release(): Promise<void> {
    return this.run('taking the interface down', async () => {
      const host = this.host;
      this.host = undefined;
      if (!host) return;
      await host.down();
      this.listeners.forEach((f) => f());
    });
  }

  /** After whatever was asked before it; its failure is the caller's (the operator sees it). */
  rotate(): Promise<{ readonly publicKey: string }> {
    const p = this.queue.then(async () => {
      if (!this.host) throw new PluginError('INVALID_REQUEST', 'wireguard: no encrypted cluster network on this host, so no key to rotate');
      return { publicKey: await this.host.rotate() };
    });
    this.queue = p.then(
      () => undefined,
      () => undefined, // the caller has the error; the next call runs regardless
    );
    return p;
  }

  stop(): Promise<void> {
    return this.run('stopping', async () => {
      await this.host?.stop();
    });
  }

  /** Resolves when the calls so far and the peers they learnt are programmed. */
  async idle(): Promise<void> {
    await this.queue;
    await this.host?.idle();
  }
}
