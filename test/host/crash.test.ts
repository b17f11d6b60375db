/**
 * Issue: reliability. The real plugin (node dist/main.js) in a throwaway namespace, driven over
 * its socket as dockerd drives it, killed with SIGKILL at random moments while CLIENTS clients
 * run endpoint lifecycles as fast as they can, ROUNDS times (MYNET_CRASH_ROUNDS,
 * MYNET_CRASH_CLIENTS). After every restart:
 *  - it answers (its state loads) and its files and sockets are root-only;
 *  - no address is handed out twice: one a client holds (acknowledged, not released) before the
 *    crash is never given to another client after it;
 *  - every endpoint whose create was acknowledged and not deleted has its veth on the bridge, and
 *    no veth of ours exists that no client could own;
 *  - two long-lived "containers" (namespaces holding their veth ends) still reach each other.
 * At the end everything is removed through the protocol: no link of ours, no nft table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type TestNetns, createNetns, destroyCreated, dockerId } from '../helpers/netns.js';
import { pings } from './plugin-fixture.js';
import { waitUntil } from '../helpers/wait.js';

const ROUNDS = Number(process.env.MYNET_CRASH_ROUNDS ?? 20);
const CLIENTS = Number(process.env.MYNET_CRASH_CLIENTS ?? 20);
const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'mnt-crash-'));
const sock = join(dir, 'p.sock');
const adminSock = join(dir, 'admin.sock');
const stateDir = join(dir, 'state');
let proc: ChildProcess | undefined;

afterAll(async () => {
  proc?.kill('SIGKILL');
  await destroyCreated();
  rmSync(dir, { recursive: true, force: true });
});

class Down extends Error {}

function call<T = Record<string, unknown>>(agent: Agent, path: string, body: unknown): Promise<T> {
  return new Promise((res, rej) => {
    const data = JSON.stringify(body);
    const req = request({ socketPath: sock, agent, method: 'POST', path, headers: { 'Content-Length': Buffer.byteLength(data) } }, (r) => {
      let t = '';
      r.on('data', (d: Buffer) => (t += d.toString()));
      r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(t) as T) : rej(new Error(`${path} ${r.statusCode}: ${t}`))));
      r.on('error', () => rej(new Down(path)));
    });
    req.on('error', () => rej(new Down(path)));
    req.end(data);
  });
}

const answers = (): Promise<boolean> =>
  call(new Agent(), '/Plugin.Activate', {}).then(
    () => true,
    () => false,
  );

/** Whether the admin socket answers GET /version (a socket left by the killed process does not: nobody listens on it). */
const adminAnswers = (): Promise<boolean> =>
  new Promise((res) => {
    const req = request({ socketPath: adminSock, method: 'GET', path: '/version' }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
      r.on('error', () => res(false));
    });
    req.on('error', () => res(false));
    req.end();
  });

/**
 * The admin socket is set up after the main one (main.ts listens on it later), so the main socket
 * answering says nothing about it: wait (bounded) until the new process answers on it, and only
 * then look at its mode.
 */
async function adminReady(): Promise<void> {
  await waitUntil('the admin socket to answer after a restart', adminAnswers, { ms: 10_000, every: 25 });
  expect(await adminAnswers(), 'the admin socket answers after a restart').toBe(true);
}

async function start(ns: TestNetns): Promise<void> {
  proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(ROOT, 'dist/main.js')], {
    env: {
      ...process.env,
      MYNET_SOCKET: sock,
      MYNET_ADMIN_SOCKET: adminSock,
      MYNET_STATE_DIR: stateDir,
      MYNET_DNS_LISTEN: '',
      MYNET_LOG_LEVEL: 'error',
      MYNET_RECONCILE_INTERVAL: '3600',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitUntil('the plugin to answer after a restart', answers, { ms: 10_000, every: 25 });
  expect(await answers(), 'the plugin answers after a restart').toBe(true);
}

async function kill(): Promise<void> {
  const p = proc;
  if (!p || p.exitCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL'); // ip netns exec execs node in place: this is the plugin itself
  await gone;
}

const NET = dockerId();
/** dockerd releases a bare address (RequestAddress answers with its prefix length). */
const bare = (a: string): string => a.split('/')[0] as string;
const POOL = '10.66.0.0/16';

/** What a client holds; `deleting`: its DeleteEndpoint was sent (it may have run before a kill). */
interface Held {
  readonly address: string;
  endpoint?: string;
  created?: boolean;
  deleting?: boolean;
}

describe('kill -9 under load, restart, repeat', () => {
  it(`${ROUNDS} rounds of ${CLIENTS} clients: state loads, no address twice, links match, peers still talk, nothing left`, async () => {
    const ns = await createNetns();
    await start(ns);
    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS + 4 });
    const pool = await call<{ PoolID: string }>(agent, '/IpamDriver.RequestPool', {
      AddressSpace: 'LocalDefault',
      Pool: POOL,
      Options: {},
      V6: false,
    });
    const gw = await call<{ Address: string }>(agent, '/IpamDriver.RequestAddress', {
      PoolID: pool.PoolID,
      Address: '10.66.0.1',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    await call(agent, '/NetworkDriver.CreateNetwork', {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: POOL, Gateway: gw.Address }],
      IPv6Data: [],
    });

    // Two long-lived containers.
    const boxes: TestNetns[] = [];
    const fixed: { id: string; address: string }[] = [];
    for (const n of [2, 3]) {
      const id = dockerId();
      const a = await call<{ Address: string }>(agent, '/IpamDriver.RequestAddress', {
        PoolID: pool.PoolID,
        Address: `10.66.0.${n}`,
        Options: {},
      });
      await call(agent, '/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: id, Interface: { Address: a.Address } });
      const j = await call<{ InterfaceName: { SrcName: string } }>(agent, '/NetworkDriver.Join', {
        NetworkID: NET,
        EndpointID: id,
        SandboxKey: `/x/${n}`,
      });
      const box = await createNetns();
      await ns.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'netns', box.name]);
      await box.run(['ip', 'addr', 'add', a.Address, 'dev', j.InterfaceName.SrcName]);
      await box.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'up']);
      boxes.push(box);
      fixed.push({ id, address: a.Address.split('/')[0] as string });
    }
    expect(await pings(boxes[0] as TestNetns, fixed[1]?.address as string)).toBe(true);

    const held: Held[][] = Array.from({ length: CLIENTS }, () => []);
    let lifecycles = 0;
    let violations: string[] = [];
    const heldBy = new Map<string, number>();

    async function client(i: number, stop: { now: boolean }): Promise<void> {
      const a = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while (!stop.now) {
          const r = await call<{ Address: string }>(a, '/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} });
          const owner = heldBy.get(r.Address);
          if (owner !== undefined) violations.push(`${r.Address} given to client ${i} while client ${owner} holds it`);
          heldBy.set(r.Address, i);
          const h: Held = { address: r.Address };
          (held[i] as Held[]).push(h);
          h.endpoint = dockerId();
          const ep = { NetworkID: NET, EndpointID: h.endpoint };
          await call(a, '/NetworkDriver.CreateEndpoint', { ...ep, Interface: { Address: r.Address } });
          h.created = true;
          await call(a, '/NetworkDriver.Join', { ...ep, SandboxKey: '/x' });
          const port = 20000 + i;
          await call(a, '/NetworkDriver.ProgramExternalConnectivity', {
            ...ep,
            Options:
              i % 2
                ? { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: port, HostPortEnd: port }] }
                : {},
          });
          await call(a, '/NetworkDriver.RevokeExternalConnectivity', ep);
          await call(a, '/NetworkDriver.Leave', ep);
          h.deleting = true;
          await call(a, '/NetworkDriver.DeleteEndpoint', ep);
          h.created = false;
          await call(a, '/IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: bare(r.Address) });
          heldBy.delete(r.Address);
          (held[i] as Held[]).pop();
          lifecycles++;
        }
      } catch (err) {
        if (!(err instanceof Down)) throw err;
      } finally {
        a.destroy();
      }
    }

    /** Like dockerd after a crash: deletes (idempotent) and releases what a client may hold. */
    async function cleanUp(i: number): Promise<void> {
      for (const h of (held[i] as Held[]).splice(0)) {
        if (h.endpoint) {
          await call(agent, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: h.endpoint });
          await call(agent, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: h.endpoint });
        }
        await call(agent, '/IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: bare(h.address) });
        heldBy.delete(h.address);
      }
    }

    const ourVeths = async (): Promise<string[]> =>
      (JSON.parse(await ns.run(['ip', '-j', 'link', 'show', 'group', '28014'])) as { ifname?: string }[]) // (ip prints {} for links outside the group)
        .filter((l) => l.ifname?.startsWith('mnh'))
        .map((l) => l.ifname as string);

    for (let round = 0; round < ROUNDS; round++) {
      const stop = { now: false };
      const running = Array.from({ length: CLIENTS }, (_, i) => client(i, stop));
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
      await kill();
      stop.now = true;
      await Promise.all(running);
      agent.destroy();
      await start(ns);

      // Files and sockets are root-only.
      await adminReady();
      expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(stateDir, 'journal.jsonl')).mode & 0o077).toBe(0);
      if (existsSync(join(stateDir, 'state.json'))) expect(statSync(join(stateDir, 'state.json')).mode & 0o077).toBe(0); // made at the first compaction
      expect(statSync(adminSock).mode & 0o777).toBe(0o600);
      expect(statSync(sock).mode & 0o007).toBe(0);

      // Links: every acknowledged endpoint has its veth; no veth without a possible owner.
      const veths = new Set(await ourVeths());
      const possible = new Set([
        ...fixed.map((f) => `mnh${f.id.slice(0, 12)}`),
        ...held.flat().flatMap((h) => (h.endpoint ? [`mnh${h.endpoint.slice(0, 12)}`] : [])),
      ]);
      for (const h of held.flat())
        if (h.created && !h.deleting)
          expect(veths.has(`mnh${h.endpoint?.slice(0, 12)}`), `veth of an acknowledged endpoint after round ${round}`).toBe(true);
      for (const v of veths) expect(possible.has(v), `veth ${v} belongs to no endpoint after round ${round}`).toBe(true);
      expect(await pings(boxes[0] as TestNetns, fixed[1]?.address as string), `peers after round ${round}`).toBe(true);

      // Addresses held across the crash are not given to others: run a burst before cleaning up.
      const burst = { now: false };
      const again = Array.from({ length: CLIENTS }, (_, i) => client(i + CLIENTS, burst));
      held.push(...Array.from({ length: CLIENTS }, () => []));
      await new Promise((r) => setTimeout(r, 300));
      burst.now = true;
      await Promise.all(again);
      for (let i = 0; i < held.length; i++) await cleanUp(i);
      held.length = CLIENTS;
      expect(violations, `after round ${round}`).toEqual([]);
      violations = [];
    }

    // Everything away, as dockerd would on docker rm and network rm.
    for (const f of fixed) {
      await call(agent, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: f.id });
      await call(agent, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: f.id });
    }
    await call(agent, '/NetworkDriver.DeleteNetwork', { NetworkID: NET });
    await call(agent, '/IpamDriver.ReleasePool', { PoolID: pool.PoolID });
    // SIGTERM drains the queued deletes before exit.
    const p = proc as ChildProcess;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
    agent.destroy();
    for (const g of ['28014', '28015'])
      expect((JSON.parse(await ns.run(['ip', '-j', 'link', 'show', 'group', g])) as { ifname?: string }[]).filter((l) => l.ifname)).toEqual(
        [],
      );
    expect(await ns.run(['nft', 'list', 'tables'])).not.toContain('inet mynet');
    console.log(`crash: ${ROUNDS} kills survived, ${lifecycles} lifecycles completed between them, ${CLIENTS} clients`);
  }, 600_000);
});
