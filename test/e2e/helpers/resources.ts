/**
 * What a test made in dockerd, so that it can all be removed afterwards, failures included.
 * Every name starts with `mnt-` so that a leftover is recognisably ours.
 */
import { IMAGE } from '../global-setup.js';
import { docker, dockerOk, ok, sh } from './sh.js';

export const PREFIX = 'mnt-';

export class Resources {
  private readonly containers = new Set<string>();
  private readonly networks: string[] = [];
  private n = 0;

  /** `daemon`: arguments that pick another dockerd (['-H', 'unix:///…/docker.sock']; hosts.ts). */
  constructor(
    private readonly tag: string,
    private readonly daemon: readonly string[] = [],
  ) {}

  name(kind: string): string {
    return `${PREFIX}${this.tag}-${kind}${++this.n}`;
  }

  async network(args: string[], name = this.name('net')): Promise<string> {
    await dockerOk(...this.daemon, 'network', 'create', ...args, name);
    this.networks.push(name);
    return name;
  }

  /** `docker network create` expected to fail: returns the CLI's error text. */
  async networkFails(args: string[], name = this.name('net')): Promise<string> {
    const r = await docker(...this.daemon, 'network', 'create', ...args, name);
    if (r.exitCode === 0) {
      this.networks.push(name);
      throw new Error(`docker network create ${args.join(' ')} succeeded but should have failed`);
    }
    return r.stderr;
  }

  /** A detached container running `sleep` (or `cmd`). */
  async container(args: string[], cmd: string[] = ['sleep', '600'], name = this.name('c')): Promise<string> {
    this.containers.add(name);
    await dockerOk(...this.daemon, 'run', '-d', '--name', name, ...args, IMAGE, ...cmd);
    return name;
  }

  track(container: string): void {
    this.containers.add(container);
  }

  async cleanup(): Promise<void> {
    if (this.containers.size) await sh('docker', [...this.daemon, 'rm', '-f', ...this.containers]);
    this.containers.clear();
    for (const n of this.networks.reverse()) await sh('docker', [...this.daemon, 'network', 'rm', n]);
    this.networks.length = 0;
  }
}

export const exec = (container: string, ...cmd: string[]): ReturnType<typeof docker> => docker('exec', container, ...cmd);

/** Links on the host in mynet's netdev group (ours by mark). */
export async function mynetLinks(): Promise<string[]> {
  const out = await ok('ip', ['-j', 'link', 'show', 'group', '28014']);
  return (JSON.parse(out || '[]') as { ifname?: string }[]).flatMap((l) => (l.ifname ? [l.ifname] : []));
}
