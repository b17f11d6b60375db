/**
 * Whether this host can run an encrypted cluster network, decided once from what is installed
 * (probeHost) and the setting (settings.ts). The answer is a refusal naming what to install or
 * set, or undefined: the orchestrator refuses `docker network create -o mynet.encrypt=wireguard`
 * with it before anything is written to etcd, so a host that cannot encrypt never joins.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { WireGuardSettings } from './settings.js';

export interface HostAbilities {
  /** The kernel has WireGuard (built in or loaded: /sys/module/wireguard). */
  readonly kernel: boolean;
  /** `wireguard-go` on PATH. */
  readonly wireguardGo: boolean;
  /** `wg` (wireguard-tools) on PATH: keys and peers are set with it in both modes. */
  readonly wg: boolean;
  /** /dev/net/tun, which wireguard-go needs. */
  readonly tun: boolean;
}

/** What runs the interface: the kernel's device, or wireguard-go's TUN. */
export type Runner = 'kernel' | 'userspace';

export type Ability = { readonly ok: true; readonly runner: Runner } | { readonly ok: false; readonly refusal: string };

const PREFIX = 'option mynet.encrypt: this host cannot encrypt';

export function encryptionAbility(s: Pick<WireGuardSettings, 'mode'>, h: HostAbilities): Ability {
  if (s.mode === 'off')
    return {
      ok: false,
      refusal: `${PREFIX} (MYNET_WIREGUARD=off); set MYNET_WIREGUARD=kernel or userspace to create encrypted networks here`,
    };
  if (!h.wg) return { ok: false, refusal: `${PREFIX}: wg is not installed (apt-get install wireguard-tools)` };
  if (s.mode === 'kernel') {
    if (h.kernel) return { ok: true, runner: 'kernel' };
    const go = h.wireguardGo ? 'wireguard-go is installed' : 'or install wireguard-go (apt-get install wireguard-go)';
    return {
      ok: false,
      refusal: `${PREFIX}: this kernel has no WireGuard (no /sys/module/wireguard); load the wireguard module, or set MYNET_WIREGUARD=userspace to run it in user space with wireguard-go (${go}; slower, ~0.3 Gbit/s per core)`,
    };
  }
  if (!h.wireguardGo)
    return { ok: false, refusal: `${PREFIX}: MYNET_WIREGUARD=userspace needs wireguard-go (apt-get install wireguard-go)` };
  if (!h.tun)
    return {
      ok: false,
      refusal: `${PREFIX}: MYNET_WIREGUARD=userspace needs /dev/net/tun (the tun device), which this host does not have`,
    };
  return { ok: true, runner: 'userspace' };
}

function onPath(cmd: string, path: string): boolean {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // Not in this directory: the next one may have it.
    }
  }
  return false;
}

export function probeHost(env: NodeJS.ProcessEnv = process.env): HostAbilities {
  const path = env.PATH ?? '';
  return {
    kernel: existsSync('/sys/module/wireguard'),
    wireguardGo: onPath('wireguard-go', path),
    wg: onPath('wg', path),
    tun: existsSync('/dev/net/tun'),
  };
}
