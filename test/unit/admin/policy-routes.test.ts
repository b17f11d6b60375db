/**
 * `mynet policy apply/ls/rm` through the admin socket (issue 25): a real Plugin on the fixture's
 * state and a recording executor. A bad file is refused with HTTP 500 {"Err"} naming the field
 * and changes nothing (no host step, no record); a good one (YAML, a Docker name for the
 * network) is stored with one nft step; ls shows what it selects, status the labels and
 * policies of each endpoint; rm removes it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../../src/admin/server.js';
import { listenUnix } from '../../../src/http/socket.js';
import { Metrics } from '../../../src/metrics.js';
import { DUAL, E1, E2, cleanKernel, fixtureState } from '../doctor/fixture.js';
import { silentLog } from '../support.js';
import { testPlugin } from '../../helpers/test-plugin.js';

const call = (
  socketPath: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; json: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });

const state = fixtureState();
for (const [id, app] of [
  [E1, 'db'],
  [E2, 'web'],
] as const) {
  const e = state.endpoints.get(id);
  if (e) state.apply([{ op: 'endpoint.put', endpoint: { ...e, labels: { app } } }]);
}
const { plugin, exec } = testPlugin({ state, snapshot: () => Promise.resolve(cleanKernel()) });
let dir: string;
let socket: string;
let server: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mnpo-admin-'));
  socket = join(dir, 'admin.sock');
  const names = { networks: new Map([[DUAL, 'blue']]), endpoints: new Map([[E1, 'db']]) };
  server = createServer(
    createAdminApp({ plugin, metrics: new Metrics(() => state), log: silentLog, version: '0', names: () => Promise.resolve(names) }),
  );
  await listenUnix(server, socket, 0o600);
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const FILE = 'name: db-from-web\nnetwork: blue\nselect: { app: db }\ningress:\n  - from: [ { app: web } ]\n    ports: [ tcp/5432 ]\n';

describe('admin socket: policies', () => {
  it('refuses a bad file naming the field, and changes nothing', async () => {
    for (const [body, why] of [
      [FILE.replace('tcp/5432', 'tcp/0'), /^policy.ingress\[0\].ports\[0\]: /],
      [FILE.replace('app: db', 'app: "d/b"'), /^policy.select.app: label value "d\/b"/],
      [FILE.replace('network: blue', 'network: red'), /^network: no mynet network "red"/],
      [`${FILE}egress: []\n`, /^policy.egress: unknown field/],
      ['name: [', /^policy: does not parse as YAML/],
    ] as const) {
      const r = await call(socket, 'POST', '/policies', body);
      expect(r.status).toBe(500);
      expect(String(r.json.Err)).toMatch(why);
    }
    expect(exec.calls).toEqual([]);
    expect(state.policies.size).toBe(0);
    expect((await call(socket, 'DELETE', '/policies/db-from-web')).json.Err).toMatch(/no policy named "db-from-web"/);
  });

  it('apply, ls, status, rm', async () => {
    const r = await call(socket, 'POST', '/policies', FILE);
    expect(r).toEqual({ status: 200, json: { applied: ['db-from-web'] } });
    expect(exec.ops.map((o) => o.kind)).toEqual(['sysctl', 'sysctl', 'nft']);
    expect(state.policies.get('db-from-web')?.networkId).toBe(DUAL);
    const ls = (await call(socket, 'GET', '/policies')).json.policies as {
      name: string;
      networkName: string;
      selects: { container?: string }[];
    }[];
    expect(ls.map((p) => [p.name, p.networkName, p.selects.map((e) => e.container)])).toEqual([['db-from-web', 'blue', ['db']]]);
    const nets = (await call(socket, 'GET', '/status')).json.networks as {
      id: string;
      endpoints: { id: string; labels?: object; policies?: string[] }[];
    }[];
    const eps = nets.find((n) => n.id === DUAL)?.endpoints ?? [];
    expect(eps.find((e) => e.id === E1)).toMatchObject({ labels: { app: 'db' }, policies: ['db-from-web'] });
    expect(eps.find((e) => e.id === E2)).toMatchObject({ labels: { app: 'web' } });
    expect(eps.find((e) => e.id === E2)?.policies).toBeUndefined();
    expect((await call(socket, 'DELETE', '/policies/db-from-web')).json).toEqual({ removed: 'db-from-web' });
    expect(state.policies.size).toBe(0);
  });
});
