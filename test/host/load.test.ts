/**
 * Issue: reliability, load. The CI setting of bench/load.mjs: 100 concurrent connections running
 * full endpoint lifecycles (one in four publishes a port) against the real plugin in a
 * throwaway namespace, for MYNET_LOAD_SECONDS (default 10). Zero errors; the plugin's open file
 * descriptors do not grow. Memory is bounded loosely here (RSS at the end within 50% of RSS
 * after the first 300 lifecycles, the run going on until at least 300 more ran): a 10 s run on a shared 2-core CI machine is too short and
 * noisy for the 10% goal, which bench/load.mjs measures over 60 s (RELIABILITY.md).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createNetns, destroyCreated } from '../helpers/netns.js';
import { PluginProcess } from './plugin-process.js';
import { waitUntil } from '../helpers/wait.js';

const CONNS = 100;
/** RSS is read after this many lifecycles, and the run lasts at least this many more (a slow machine does fewer in SECONDS). */
const EARLY = 300;
const SECONDS = Number(process.env.MYNET_LOAD_SECONDS ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'mnt-load-'));
let nsName = '';
const plugin = new PluginProcess(() => nsName, join(dir, 'plugin'), { MYNET_DNS_LISTEN: '', MYNET_LOG_LEVEL: 'error' });
const sock = plugin.socket;

afterAll(async () => {
  await plugin.kill9();
  await destroyCreated();
  rmSync(dir, { recursive: true, force: true });
});

const id = (): string => randomBytes(32).toString('hex');
function call(agent: Agent, path: string, body: unknown): Promise<unknown> {
  return new Promise((res, rej) => {
    const data = JSON.stringify(body);
    const req = request({ socketPath: sock, agent, method: 'POST', path, headers: { 'Content-Length': Buffer.byteLength(data) } }, (r) => {
      let t = '';
      r.on('data', (d: Buffer) => (t += d.toString()));
      r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(t)) : rej(new Error(`${path} ${r.statusCode}: ${t}`))));
    });
    req.on('error', rej);
    req.end(data);
  });
}
const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

it(`${CONNS} connections of endpoint lifecycles for ${SECONDS} s: no error, no fd growth, memory bounded`, async () => {
  nsName = (await createNetns()).name;
  await plugin.start();
  const setup = new Agent({ keepAlive: true });
  const pid = plugin.pid as number; // ip netns exec execs node in place
  const NET = id();
  await call(setup, '/NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'x', Pool: '10.60.0.0/14', Gateway: '10.60.0.1/14' }],
    IPv6Data: [],
  });
  const fd0 = fds(pid);
  let done = 0;
  let rssEarly = 0;
  const errors: string[] = [];
  const until = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNS }, async (_, w) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      while ((Date.now() < until || done < 2 * EARLY) && errors.length < 100) {
        const k = ++n;
        const ep = { NetworkID: NET, EndpointID: id() };
        try {
          await call(agent, '/NetworkDriver.CreateEndpoint', {
            ...ep,
            Interface: { Address: `10.${60 + ((k >> 16) & 3)}.${(k >> 8) & 255}.${k & 255 || 1}/14` },
          });
          await call(agent, '/NetworkDriver.Join', { ...ep, SandboxKey: '/x' });
          await call(agent, '/NetworkDriver.ProgramExternalConnectivity', {
            ...ep,
            Options:
              w % 4 === 0
                ? {
                    'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 40000 + w, HostPortEnd: 40000 + w }],
                  }
                : {},
          });
          await call(agent, '/NetworkDriver.RevokeExternalConnectivity', ep);
          await call(agent, '/NetworkDriver.Leave', ep);
          await call(agent, '/NetworkDriver.DeleteEndpoint', ep);
          if (++done === EARLY) rssEarly = rss(pid);
        } catch (e) {
          errors.push(String(e).slice(0, 300));
        }
      }
      agent.destroy();
    }),
  );
  setup.destroy();
  // The server closes its side of the 100 destroyed connections when it gets to it (a loaded
  // machine: seconds); a leak never settles, so the wait fails on one.
  await waitUntil('the plugin’s descriptors back to their number before the load (+2)', () => fds(pid) <= fd0 + 2, {
    ms: 15_000,
    every: 100,
    show: () => `fds ${fd0} -> ${fds(pid)}`,
  });
  const rssEnd = rss(pid);
  console.log(
    `load: ${done} lifecycles over ${CONNS} connections in ${SECONDS} s, ${errors.length} errors, fds ${fd0} -> ${fds(pid)}, RSS ${rssEarly.toFixed(1)} -> ${rssEnd.toFixed(1)} MiB`,
  );
  expect(errors.slice(0, 3)).toEqual([]);
  expect(done).toBeGreaterThanOrEqual(CONNS); // every connection completed lifecycles (requests are serialised by one lock)
  expect(fds(pid)).toBeLessThanOrEqual(fd0 + 2);
  expect(rssEarly).toBeGreaterThan(0);
  expect(rssEnd).toBeLessThan(rssEarly * 1.5);
}, 120_000);
