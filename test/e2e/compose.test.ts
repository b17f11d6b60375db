/**
 * Issue: packaging. examples/compose.yml, unchanged, with Debian's docker-compose 1.29 and with
 * `docker compose` v2 (sid's docker-compose 2.40, a CLI plugin that scripts/engines.sh unpacks;
 * issue 16), against the legacy plugin (`make run`, driver name `mynet`): mynet networks with
 * driver_opts (mtu) and mynet's IPAM (subnet, ip_range, gateway, aux_addresses), an internal
 * network, a published port, services that reach each other by service name; `down` leaves no
 * network, no link and no table behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE } from './global-setup.js';
import { httpGet } from './helpers/net.js';
import { COMPOSE_V2, ROOT, assertNoOtherMynet, freePort, run, runOk, timed } from './helpers/packaging.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { mynetLinks } from './helpers/resources.js';
import { waitFor } from './helpers/sh.js';

const PROJECT = 'mnt-compose';
const FILE = join(ROOT, 'examples/compose.yml');

interface Compose {
  readonly name: string;
  readonly cmd: string;
  readonly pre: readonly string[];
  readonly env: Record<string, string>;
}
const COMPOSES: readonly Compose[] = [
  { name: 'docker-compose 1.29', cmd: 'docker-compose', pre: [], env: {} },
  { name: 'docker compose v2', cmd: 'docker', pre: ['compose'], env: { DOCKER_CONFIG: COMPOSE_V2 } },
];

describe.each(COMPOSES)('packaging: examples/compose.yml with $name and the legacy plugin', (c) => {
  let plugin: PluginHandle | undefined;
  let port = 0;
  let env: Record<string, string> = {};
  const compose = (...args: string[]): ReturnType<typeof run> =>
    run(c.cmd, [...c.pre, '-f', FILE, '-p', PROJECT, ...args], { env, timeoutMs: 120_000 });
  const composeOk = (...args: string[]): Promise<string> =>
    runOk(c.cmd, [...c.pre, '-f', FILE, '-p', PROJECT, ...args], { env, timeoutMs: 120_000 });
  const sh = (service: string, cmd: string): ReturnType<typeof run> => compose('exec', '-T', service, 'sh', '-c', cmd);

  beforeAll(async () => {
    if (c.env.DOCKER_CONFIG && !existsSync(join(COMPOSE_V2, 'cli-plugins', 'docker-compose'))) {
      throw new Error(`no compose v2 in ${COMPOSE_V2}: run scripts/engines.sh fetch`);
    }
    await assertNoOtherMynet();
    // Unconditional (issue 15.7): a table or link left by a crashed run fails here, and is not
    // taken for "was there before" by the teardown checks below.
    expect(await mynetLinks()).toEqual([]);
    expect(await runOk('nft', ['list', 'tables'])).not.toContain('inet mynet');
    plugin = await startPlugin();
    port = await freePort();
    env = { ...c.env, MYNET_DRIVER: 'mynet', MYNET_IMAGE: IMAGE, WEB_PORT: String(port) };
    console.log(`[compose] ${await runOk(c.cmd, [...c.pre, 'version'], { env })}`);
    await timed(`${c.name} up -d`, () => composeOk('up', '-d'));
  });

  afterAll(async () => {
    await compose('down', '--remove-orphans');
    // If down failed half-way, the networks are ours to remove.
    for (const n of ['front', 'back']) await run('docker', ['network', 'rm', `${PROJECT}_${n}`]);
    const code = await plugin?.stop();
    if (plugin) removeStateDir(plugin);
    expect(code).toBe(0);
  });

  it('services reach each other by service name, and the published port answers on 127.0.0.1', async () => {
    await waitFor('web to serve', async () => (await httpGet('127.0.0.1', port)) === 'hello from web', 15_000, 250);
    expect((await sh('client', 'wget -qO- http://web/')).stdout).toBe('hello from web');
    expect((await sh('web', 'wget -qO- http://api:8080/')).stdout).toBe('hello from api');
    // client is only on front; api only on the internal back network.
    expect((await sh('client', 'wget -qO- -T 2 http://api:8080/')).exitCode).not.toBe(0);
  });

  it('networks are mynet with its IPAM: driver_opts mtu, ip_range, gateway, aux address, a fixed address', async () => {
    const inspect = JSON.parse(await runOk('docker', ['network', 'inspect', `${PROJECT}_front`, `${PROJECT}_back`])) as {
      Name: string;
      Driver: string;
      Internal: boolean;
      IPAM: {
        Driver: string;
        Config: { Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[];
      };
    }[];
    const [front, back] = inspect;
    expect([front?.Driver, front?.IPAM.Driver, back?.Driver, back?.IPAM.Driver]).toEqual(['mynet', 'mynet', 'mynet', 'mynet']);
    expect(front?.IPAM.Config[0]).toMatchObject({
      Subnet: '10.123.0.0/24',
      IPRange: '10.123.0.128/25',
      Gateway: '10.123.0.1',
      AuxiliaryAddresses: { printer: '10.123.0.129' },
    });
    expect(back?.Internal).toBe(true);
    expect((await sh('client', 'cat /sys/class/net/eth0/mtu')).stdout).toBe('1450');
    const addr = (await sh('client', "ip -4 -o addr show eth0 | awk '{print $4}'")).stdout;
    const last = Number(/^10\.123\.0\.(\d+)\/24$/.exec(addr)?.[1]);
    expect(last, `client address ${addr}`).toBeGreaterThanOrEqual(128);
    expect(last).not.toBe(129);
    expect((await sh('client', 'ip route')).stdout).toContain('default via 10.123.0.1');
    expect((await sh('api', "ip -4 -o addr show eth0 | awk '{print $4}'")).stdout).toBe('10.123.1.10/24');
    // An internal network has no way out.
    expect((await sh('api', 'ip route')).stdout).not.toContain('default');
  });

  it('down leaves no network, no link in group 28014, no inet mynet table', async () => {
    await timed(`${c.name} down`, () => composeOk('down'));
    expect(await runOk('docker', ['network', 'ls', '--filter', `name=${PROJECT}_`, '--format', '{{.Name}}'])).toBe('');
    expect(await mynetLinks()).toEqual([]);
    expect(await runOk('nft', ['list', 'tables'])).not.toContain('inet mynet');
  });
});
