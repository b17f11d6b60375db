/**
 * The admin endpoint over a real unix socket: a real Plugin on the state of a real run, a
 * RecordingExecutor for the host and an editable kernel snapshot, real Metrics. Checks every
 * route, that only POST /doctor changes the host, and that /metrics is valid Prometheus text.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { type Server, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DockerNames } from '../../../src/admin/docker-names.js';
import { createAdminApp } from '../../../src/admin/server.js';
import type { KernelSnapshot } from '../../../src/host/kernel-snapshot.js';
import { listenUnix } from '../../../src/http/socket.js';
import { Metrics } from '../../../src/metrics.js';
import { parsePrometheus, sampleValue } from '../../helpers/prometheus.js';
import { BR_SNAT, DUAL, E1, VETH_E3, cleanKernel, fixtureState, withLink, withoutLink } from '../doctor/fixture.js';
import { silentLog } from '../support.js';
import { testPlugin } from '../../helpers/test-plugin.js';
import { waitUntil } from '../../helpers/wait.js';

interface Answer {
  status: number;
  type: string;
  text: string;
  json: Record<string, unknown>;
}

function call(socketPath: string, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // /metrics is text
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

let dir: string;
let socket: string;
let server: Server;
let kernel: KernelSnapshot;
let names: () => Promise<DockerNames>;
const state = fixtureState();
const metrics = new Metrics(() => state);
const { plugin, exec } = testPlugin({ state, snapshot: () => Promise.resolve(kernel), onDifferences: (found) => metrics.doctor(found) });
const get = (path: string): Promise<Answer> => call(socket, 'GET', path);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mynet-admin-'));
  socket = join(dir, 'run', 'admin.sock');
  server = createServer(createAdminApp({ plugin, metrics, log: silentLog, version: '9.8.7', names: () => names() }));
  await listenUnix(server, socket, 0o600);
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  kernel = cleanKernel();
  names = () => Promise.resolve({ networks: new Map([[DUAL, 'front']]), endpoints: new Map([[E1, 'web']]) });
  exec.clear();
});

/** Down bridge (drift), missing veth (missing), orphan link. */
const broken = (): KernelSnapshot =>
  withLink(
    withLink(withoutLink(cleanKernel(), VETH_E3), BR_SNAT, (l) => ({ ...l, up: false })),
    'mn-orphan9',
    (l) => l,
  );

describe('admin socket', () => {
  it('is root only (mode 0600)', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
  });

  it('GET /version', async () => {
    const r = await get('/version');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ version: '9.8.7', node: process.version });
  });

  it("GET /status: networks with Docker's names and the number of differences, changing nothing", async () => {
    let r = await get('/status');
    expect(r.status).toBe(200);
    const nets = r.json.networks as { name?: string; endpoints: { container?: string }[] }[];
    expect(nets).toHaveLength(3);
    expect(nets[0]?.name).toBe('front');
    expect(nets[0]?.endpoints[0]?.container).toBe('web');
    expect(r.json.differences).toBe(0);
    kernel = broken();
    r = await get('/status');
    expect(r.json.differences).toBe(3);
    expect(exec.calls).toEqual([]);
  });

  it("Docker's names failing (dockerd down) still answers, with ids only", async () => {
    names = () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock'));
    const r = await get('/status');
    expect(r.status).toBe(200);
    expect((r.json.networks as object[]).every((n) => !('name' in n))).toBe(true);
    const p = await get('/ports');
    expect(p.status).toBe(200);
    expect((p.json.ports as object[]).every((x) => !('container' in x))).toBe(true);
  });

  it('GET /status says whether names are on (issue 14.8: the Docker socket is optional)', async () => {
    const offSocket = join(dir, 'run', 'admin-off.sock');
    const why = '/var/run/docker.sock is not a socket';
    const off = createServer(
      createAdminApp({
        plugin,
        metrics,
        log: silentLog,
        version: '9.8.7',
        names: () => names(),
        namesSource: { on: false, socket: '/var/run/docker.sock', why },
      }),
    );
    await listenUnix(off, offSocket, 0o600);
    try {
      expect((await call(offSocket, 'GET', '/status')).json.names).toEqual({ on: false, socket: '/var/run/docker.sock', why });
    } finally {
      await new Promise((r) => off.close(r));
    }
    expect((await get('/status')).json).not.toHaveProperty('names');
  });

  it('the cluster: /status carries it, /cluster/forget needs a cluster and a node', async () => {
    const clusterSocket = join(dir, 'run', 'admin-cluster.sock');
    const forgot: string[] = [];
    const cluster = {
      status: () => Promise.resolve({ node: 'host-a', address: '198.18.0.1', etcd: 'up' as const, networks: [], members: [] }),
      forget: (node: string) => {
        forgot.push(node);
        return Promise.resolve({ addresses: 1, endpoints: 1 });
      },
      rotateKey: () => Promise.resolve({ publicKey: 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=' }),
    };
    const app = createServer(createAdminApp({ plugin, metrics, log: silentLog, version: '9.8.7', names: () => names(), cluster }));
    await listenUnix(app, clusterSocket, 0o600);
    try {
      expect((await call(clusterSocket, 'GET', '/status')).json.cluster).toMatchObject({ node: 'host-a', etcd: 'up' });
      expect((await call(clusterSocket, 'POST', '/cluster/forget')).status).toBe(400);
      const f = await call(clusterSocket, 'POST', '/cluster/forget?node=host-b');
      expect(f.json).toEqual({ node: 'host-b', addresses: 1, endpoints: 1 });
      expect(forgot).toEqual(['host-b']);
    } finally {
      await new Promise((r) => app.close(r));
    }
    const none = await call(socket, 'POST', '/cluster/forget?node=host-b');
    expect(none.status).toBe(400);
    expect(none.json.Err).toMatch(/no cluster store/);
  });

  it('GET /ports: every published port, sorted', async () => {
    const r = await get('/ports');
    expect((r.json.ports as { hostPort: number; container?: string }[]).map((p) => [p.hostPort, p.container])).toEqual([
      [5353, 'web'],
      [8080, 'web'],
      [8081, undefined],
      [8443, undefined],
    ]);
  });

  it('GET /doctor reports and changes nothing', async () => {
    kernel = broken();
    const r = await get('/doctor');
    const results = r.json.results as { difference: { kind: string; object: string }; repaired: boolean }[];
    expect(results.map((x) => `${x.difference.kind} ${x.difference.object} ${x.repaired}`)).toEqual([
      `drift bridge ${BR_SNAT} false`,
      `missing veth ${VETH_E3} false`,
      'orphan link mn-orphan9 false',
    ]);
    expect(exec.calls).toEqual([]);
  });

  it('POST /doctor?fix=safe repairs all but orphans; POST /doctor?fix=all (and plain POST /doctor) removes orphans too', async () => {
    kernel = broken();
    let r = await call(socket, 'POST', '/doctor?fix=safe');
    expect((r.json.results as { repaired: boolean }[]).map((x) => x.repaired)).toEqual([true, true, false]);
    expect(exec.ops).not.toContainEqual({ kind: 'link-del', name: 'mn-orphan9' });
    for (const path of ['/doctor?fix=all', '/doctor']) {
      exec.clear();
      r = await call(socket, 'POST', path);
      expect((r.json.results as { repaired: boolean }[]).every((x) => x.repaired)).toBe(true);
      expect(exec.ops).toContainEqual({ kind: 'link-del', name: 'mn-orphan9' });
    }
  });

  it('POST /doctor with any other fix value is refused and repairs nothing (fix=none must not remove orphans)', async () => {
    kernel = broken();
    for (const path of ['/doctor?fix=none', '/doctor?fix=ALL', '/doctor?fix=safe&fix=all']) {
      const r = await call(socket, 'POST', path);
      expect(r.status, path).toBe(400);
      expect(String(r.json.Err)).toMatch(/^fix must be "all" or "safe", not /);
    }
    expect(exec.calls).toEqual([]);
  });

  it('an error inside answers 500 with the message, as JSON', async () => {
    kernel = undefined as unknown as KernelSnapshot; // diagnose cannot read it
    const r = await get('/doctor');
    expect(r.status).toBe(500);
    expect(typeof r.json.Err).toBe('string');
  });

  it('an unknown route answers 404 naming it', async () => {
    const r = await call(socket, 'DELETE', '/status');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ Err: 'unknown admin route: DELETE /status' });
    expect((await get('/nope')).status).toBe(404);
  });

  it('mynet_process_heap_live_bytes: the heap in use right after a full collection', async () => {
    // A full collection on demand: gc() exposed for this test only.
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    // The gc entry reaches the observer asynchronously; the gauge is 0 before the first.
    const liveNow = async (): Promise<number | undefined> =>
      sampleValue(parsePrometheus((await get('/metrics')).text), 'mynet_process_heap_live_bytes');
    await waitUntil('the full collection observed', async () => ((await liveNow()) ?? 0) > 0);
    const live = await liveNow();
    expect(live).toBeGreaterThan(1e6);
    expect(live).toBeLessThan(process.memoryUsage().heapTotal);
  });

  it("GET /metrics is Prometheus text with mynet's metrics, gauges read from the state", async () => {
    metrics.request('/NetworkDriver.CreateEndpoint', true, 3);
    metrics.request('/NetworkDriver.CreateEndpoint', false, 1);
    metrics.command(['ip', '-batch', '-'], 2, true);
    metrics.command(['nft', '-f', '-'], 2, false);
    kernel = broken();
    await get('/doctor');
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(r.text);
    for (const name of [
      'mynet_requests_total',
      'mynet_request_duration_seconds',
      'mynet_host_commands_total',
      'mynet_host_command_duration_seconds',
      'mynet_dns_queries_total',
      'mynet_networks',
      'mynet_endpoints',
      'mynet_published_ports',
      'mynet_doctor_differences_total',
      'mynet_process_heap_live_bytes',
    ]) {
      expect(m.help.has(name), name).toBe(true);
      expect(m.type.has(name), name).toBe(true);
    }
    expect(sampleValue(m, 'mynet_networks')).toBe(3);
    expect(sampleValue(m, 'mynet_endpoints')).toBe(4);
    expect(sampleValue(m, 'mynet_published_ports')).toBe(4);
    expect(sampleValue(m, 'mynet_requests_total', { route: '/NetworkDriver.CreateEndpoint', outcome: 'ok' })).toBe(1);
    expect(sampleValue(m, 'mynet_requests_total', { route: '/NetworkDriver.CreateEndpoint', outcome: 'error' })).toBe(1);
    expect(sampleValue(m, 'mynet_request_duration_seconds_count', { route: '/NetworkDriver.CreateEndpoint' })).toBe(2);
    expect(sampleValue(m, 'mynet_request_duration_seconds_bucket', { route: '/NetworkDriver.CreateEndpoint', le: '+Inf' })).toBe(2);
    expect(sampleValue(m, 'mynet_host_commands_total', { command: 'ip-batch', outcome: 'ok' })).toBe(1);
    expect(sampleValue(m, 'mynet_host_commands_total', { command: 'nft', outcome: 'error' })).toBe(1);
    // The broken kernel holds one difference of each of these kinds (the gauge is the last run's);
    // the counters also hold earlier runs of this file, so they are at least that.
    for (const kind of ['drift', 'missing', 'orphan']) {
      expect(sampleValue(m, 'mynet_doctor_differences', { kind }), kind).toBe(1);
      expect(sampleValue(m, 'mynet_doctor_differences_total', { kind }), kind).toBeGreaterThanOrEqual(1);
    }
    const totalMissing = sampleValue(m, 'mynet_doctor_differences_total', { kind: 'missing' });
    expect(m.samples.some((s) => s.name.startsWith('mynet_process_'))).toBe(true);
    // Once the kernel matches again, the gauge falls back to 0 while the counter keeps its count.
    kernel = cleanKernel();
    await get('/doctor');
    const after = parsePrometheus((await get('/metrics')).text);
    expect(sampleValue(after, 'mynet_doctor_differences', { kind: 'missing' })).toBe(0);
    expect(sampleValue(after, 'mynet_doctor_differences', { kind: 'orphan' })).toBe(0);
    expect(sampleValue(after, 'mynet_doctor_differences_total', { kind: 'missing' })).toBe(totalMissing);
  });
});
