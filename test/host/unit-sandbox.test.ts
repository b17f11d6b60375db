/**
 * Issue 14.8: systemd/mynet.service's least privilege, for real. This machine's PID 1 is not
 * systemd, so systemd cannot run the unit here; instead the real plugin (node dist/main.js) runs
 * in a throwaway network namespace with what the unit gives it, read from the unit file:
 * exactly its CapabilityBoundingSet (no inheritable or ambient capabilities, no_new_privs) and a
 * read-only / but for its writable paths (StateDirectory, RuntimeDirectory, ReadWritePaths),
 * made by test/host/unit-sandbox.sh. It must run a network + endpoint lifecycle over its socket,
 * with a published port, and serve DNS on port 53. Negative controls show the sandbox can fail:
 * without CAP_NET_ADMIN the lifecycle fails, without its state directory writable the plugin
 * does not start, and nothing outside the writable paths can be written.
 * The unit's other settings (seccomp, ProtectKernel*, RestrictAddressFamilies, MemoryMax...)
 * need systemd: they are checked by systemd-analyze verify/security (test/e2e/plugin-managed).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { BRIDGE_PREFIX, HOST_VETH_PREFIX, defaultBridgeName } from '../../src/plan/link-names.js';
import { type TestNetns, createNetns, destroyCreated, dockerId } from '../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SANDBOX = join(ROOT, 'test/host/unit-sandbox.sh');
const UNIT = readFileSync(join(ROOT, 'systemd/mynet.service'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'mnt-unit-'));
let proc: ChildProcess | undefined;
let stderr = '';

/** A [Service] setting's words (the last assignment wins, as in systemd). */
function setting(key: string): string[] {
  const lines = UNIT.split('\n').filter((l) => l.startsWith(`${key}=`));
  return (lines.at(-1)?.slice(key.length + 1) ?? '').split(/\s+/).filter(Boolean);
}

/** CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW → "+net_admin,+net_raw" (setpriv's syntax). */
const unitCaps = setting('CapabilityBoundingSet').map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
/** What the unit lets the plugin write: StateDirectory=, RuntimeDirectory=, ReadWritePaths=. */
const unitWritable = [
  ...setting('StateDirectory').map((d) => `/var/lib/${d}`),
  ...setting('RuntimeDirectory').map((d) => `/run/${d}`),
  ...setting('ReadWritePaths'),
];
/** The same paths inside this test's directory (the plugin must not touch the host's). */
const inDir = (p: string): string => join(dir, p);

afterEach(async () => {
  await stop();
  await destroyCreated();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function stop(): Promise<void> {
  const p = proc;
  proc = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM'); // ip netns exec, unshare, the script and setpriv exec in place: this is node
  await gone;
}

function sandboxArgv(ns: TestNetns, caps: readonly string[], writable: readonly string[], argv: readonly string[]): string[] {
  return ['netns', 'exec', ns.name, 'unshare', '-m', SANDBOX, caps.join(','), ...writable, '--', ...argv];
}

const sock = inDir(DEFAULTS.MYNET_SOCKET);

async function start(ns: TestNetns, caps: readonly string[], writable: readonly string[]): Promise<boolean> {
  stderr = '';
  const p = spawn('ip', sandboxArgv(ns, caps, writable, [process.execPath, join(ROOT, 'dist/main.js')]), {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      MYNET_SOCKET: sock,
      MYNET_ADMIN_SOCKET: inDir(DEFAULTS.MYNET_ADMIN_SOCKET),
      MYNET_STATE_DIR: inDir(DEFAULTS.MYNET_STATE_DIR),
      // Port 53 on the namespace's own loopback: CAP_NET_BIND_SERVICE is needed for real.
      MYNET_DNS_LISTEN: '127.0.0.153:53',
      MYNET_LOG_LEVEL: 'warn',
      MYNET_RECONCILE_INTERVAL: '3600',
      // No dockerd here (a missing socket: names stay on, retried; the DNS server runs).
      DOCKER_HOST: `unix://${inDir('absent/docker.sock')}`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc = p;
  p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 200 && p.exitCode === null; i++) {
    if (
      await call('/Plugin.Activate', {}).then(
        () => true,
        () => false,
      )
    )
      return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

function call<T = Record<string, unknown>>(path: string, body: unknown): Promise<T> {
  return new Promise((res, rej) => {
    const data = JSON.stringify(body);
    const req = request(
      { socketPath: sock, agent: new Agent(), method: 'POST', path, headers: { 'Content-Length': Buffer.byteLength(data) } },
      (r) => {
        let t = '';
        r.on('data', (d: Buffer) => (t += d.toString()));
        r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(t) as T) : rej(new Error(`${path} ${r.statusCode}: ${t}`))));
      },
    );
    req.on('error', rej);
    req.end(data);
  });
}

/** A network, an endpoint joined with a port published on 127.0.0.1, then all of it removed. */
async function lifecycle(ns: TestNetns): Promise<{ bridge: boolean; veth: boolean; after: string }> {
  const net = dockerId();
  const ep = dockerId();
  const pool = await call<{ PoolID: string }>('/IpamDriver.RequestPool', {
    AddressSpace: 'LocalDefault',
    Pool: '10.67.0.0/24',
    Options: {},
    V6: false,
  });
  const gw = await call<{ Address: string }>('/IpamDriver.RequestAddress', {
    PoolID: pool.PoolID,
    Address: '10.67.0.1',
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  await call('/NetworkDriver.CreateNetwork', {
    NetworkID: net,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.67.0.0/24', Gateway: gw.Address }],
    IPv6Data: [],
  });
  const a = await call<{ Address: string }>('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} });
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: net, EndpointID: ep, Interface: { Address: a.Address } });
  const j = await call<{ InterfaceName: { SrcName: string } }>('/NetworkDriver.Join', { NetworkID: net, EndpointID: ep, SandboxKey: '/x' });
  await call('/NetworkDriver.ProgramExternalConnectivity', {
    NetworkID: net,
    EndpointID: ep,
    Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '127.0.0.1', HostPort: 8080, HostPortEnd: 8080 }] },
  });
  const links = await ns.run(['ip', '-o', 'link', 'show']);
  const bridge = links.includes(`: ${defaultBridgeName(net)}: `);
  const veth = links.includes(j.InterfaceName.SrcName);
  await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: net, EndpointID: ep });
  await call('/NetworkDriver.Leave', { NetworkID: net, EndpointID: ep });
  await call('/NetworkDriver.DeleteEndpoint', { NetworkID: net, EndpointID: ep });
  await call('/IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a.Address.split('/')[0] });
  await call('/NetworkDriver.DeleteNetwork', { NetworkID: net });
  await call('/IpamDriver.ReleasePool', { PoolID: pool.PoolID });
  return { bridge, veth, after: await ns.run(['ip', '-o', 'link', 'show']) };
}

describe("systemd/mynet.service: the plugin with exactly the unit's privileges", () => {
  it("the unit names a bounding set and writable paths, and the plugin's default paths are among them", () => {
    expect(unitCaps).toContain('+net_admin');
    expect(setting('ProtectSystem')).toEqual(['strict']);
    expect(setting('NoNewPrivileges')).toEqual(['yes']);
    for (const p of [DEFAULTS.MYNET_STATE_DIR, dirname(DEFAULTS.MYNET_ADMIN_SOCKET), dirname(DEFAULTS.MYNET_SOCKET)])
      expect(unitWritable, p).toContain(p);
  });

  it("runs a network + endpoint lifecycle with a published port and serves DNS on port 53, with only the unit's capabilities and writable paths", async () => {
    const ns = await createNetns();
    expect(await start(ns, unitCaps, unitWritable.map(inDir)), `the plugin did not answer:\n${stderr}`).toBe(true);
    // The plugin process has exactly the bounding set, and nothing to inherit.
    const status = readFileSync(`/proc/${proc?.pid}/status`, 'utf8');
    const mask = (name: string): bigint => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'x'}`);
    const bits = unitCaps.map((c) =>
      Number(
        /^\d+$/.test(c)
          ? c
          : execFileSync('capsh', [`--explain=cap_${c.slice(1)}`])
              .toString()
              .match(/\((\d+)\)/)?.[1],
      ),
    );
    expect(mask('CapBnd')).toBe(bits.reduce((m, b) => m | (1n << BigInt(b)), 0n));
    expect(mask('CapEff')).toBe(mask('CapBnd'));
    expect(mask('CapInh')).toBe(0n);
    expect(status).toMatch(/^NoNewPrivs:\s*1$/m);

    const r = await lifecycle(ns);
    expect(r.bridge, 'the bridge was made').toBe(true);
    expect(r.veth, 'the veth was made').toBe(true);
    expect(r.after).not.toContain(`: ${BRIDGE_PREFIX}`);
    expect(r.after).not.toContain(`: ${HOST_VETH_PREFIX}`);
    expect(readdirSync(inDir(DEFAULTS.MYNET_STATE_DIR)).join(' ')).toMatch(/journal\.jsonl|state\.json/);
    // DNS on 127.0.0.153:53 inside the namespace: an answer (REFUSED for a name out of its zone).
    const dig = await ns.run(['dig', '+time=1', '+tries=2', '@127.0.0.153', 'example.org']);
    expect(dig).toMatch(/status: REFUSED/);
    expect(stderr, 'the plugin logged no error').not.toMatch(/"level":(50|60)/);
  });

  it('negative control: without CAP_NET_ADMIN the same lifecycle fails', async () => {
    const ns = await createNetns();
    const caps = unitCaps.filter((c) => c !== '+net_admin');
    const up = await start(ns, caps, unitWritable.map(inDir));
    const failed =
      !up ||
      (await lifecycle(ns).then(
        () => false,
        (err: Error) => /CreateNetwork 500/.test(err.message),
      ));
    expect(failed, 'the lifecycle worked without CAP_NET_ADMIN: the sandbox does not limit capabilities').toBe(true);
  });

  it('negative control: the plugin cannot start without its state directory writable, and nothing outside the writable paths can be written', async () => {
    const ns = await createNetns();
    rmSync(inDir(DEFAULTS.MYNET_STATE_DIR), { recursive: true, force: true }); // the run above wrote there
    const writable = unitWritable.filter((p) => p !== DEFAULTS.MYNET_STATE_DIR).map(inDir);
    expect(await start(ns, unitCaps, writable), 'the plugin started with its state directory read-only').toBe(false);
    expect(existsSync(join(inDir(DEFAULTS.MYNET_STATE_DIR), 'journal.jsonl'))).toBe(false);
    await stop();
    // The sandbox itself: a file beside the writable paths cannot be made, one inside can.
    const touch = (path: string): boolean => {
      try {
        execFileSync('ip', sandboxArgv(ns, unitCaps, unitWritable.map(inDir), ['touch', path]), { stdio: 'pipe' });
        return true;
      } catch {
        return false;
      }
    };
    expect(touch(inDir('outside'))).toBe(false);
    try {
      expect(touch('/tmp/mnt-unit-outside')).toBe(false);
    } finally {
      rmSync('/tmp/mnt-unit-outside', { force: true });
    }
    expect(touch(join(inDir(DEFAULTS.MYNET_STATE_DIR), 'inside'))).toBe(true);
  });
});
