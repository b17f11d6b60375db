/**
 * An "outside host": a network namespace joined to this host by a veth pair, with no route to
 * container subnets, so only NAT makes replies come back. Addresses are from TEST-NET-3
 * (203.0.113.0/24), on links this test makes; nothing leaves the machine.
 */
import { randomBytes } from 'node:crypto';
import { ok, sh } from './sh.js';

export interface Outside {
  readonly ns: string;
  /** The host's address on the link (a "host address" for published ports). */
  readonly hostIp: string;
  /** The outside host's own address. */
  readonly ip: string;
  run(...argv: string[]): ReturnType<typeof sh>;
  destroy(): Promise<void>;
}

export async function makeOutside(octet = 0): Promise<Outside> {
  const id = randomBytes(3).toString('hex');
  const ns = `mnt-out-${id}`;
  const hostIf = `mnto${id}`;
  const base = octet * 4; // a /30 per outside host
  const hostIp = `203.0.113.${base + 1}`;
  const ip = `203.0.113.${base + 2}`;
  await ok('ip', ['netns', 'add', ns]);
  try {
    await ok('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ok('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostIf]);
    await ok('ip', ['link', 'set', hostIf, 'up']);
    await ok('ip', ['-n', ns, 'addr', 'add', `${ip}/30`, 'dev', 'eth0']);
    await ok('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await ok('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await sh('ip', ['link', 'del', hostIf]);
    await sh('ip', ['netns', 'del', ns]);
    throw err;
  }
  return {
    ns,
    hostIp,
    ip,
    run: (...argv) => sh('ip', ['netns', 'exec', ns, ...argv]),
    async destroy() {
      await sh('ip', ['link', 'del', hostIf]);
      await sh('ip', ['netns', 'del', ns]);
    },
  };
}
