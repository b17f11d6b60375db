/**
 * TLS to etcd, as a user configures it (MYNET_ETCD_ENDPOINTS=https://..., MYNET_ETCD_CA/_CERT/
 * _KEY), against a private etcd that requires client certificates. A wrong or missing
 * credential fails within the 3 s bound with CLUSTER_UNAVAILABLE, and no error shows key bytes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { parseClusterSettings, readTls } from '../../src/cluster/settings.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitUntil } from '../helpers/wait.js';

let etcd: TestEtcd;
const clients: EtcdKv[] = [];

function storeFrom(env: Record<string, string>): ClusterStore {
  const s = parseClusterSettings({ MYNET_ETCD_ENDPOINTS: etcd.endpoint, MYNET_NODE_ADDRESS: '198.18.0.1', ...env }, 'host-tls');
  if (!s) throw new Error('no settings');
  const tls = readTls(s);
  const kv = new EtcdKv({ endpoints: s.endpoints, ...(tls && { tls }) });
  clients.push(kv);
  return new ClusterStore(kv, { name: s.nodeName, address: s.nodeAddress ?? '' });
}

beforeAll(async () => {
  etcd = await startEtcd({ tls: true });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
afterAll(async () => {
  await etcd?.destroy();
});

describe('TLS to etcd', () => {
  it('CA, client certificate and key from the settings: the store works', async () => {
    const pki = etcd.pki as NonNullable<TestEtcd['pki']>;
    expect(etcd.endpoint).toMatch(/^https:/);
    const s = storeFrom({ MYNET_ETCD_CA: pki.ca, MYNET_ETCD_CERT: pki.clientCert, MYNET_ETCD_KEY: pki.clientKey });
    const def = await s.defineNetwork({ cluster: 'tls', subnet: '10.77.0.0/16', mtu: 1450 });
    expect(await s.claimAddress(def, '10.77.0.2')).toMatchObject({ node: 'host-tls' });
  });

  it.each([
    ['no client certificate', (p: NonNullable<TestEtcd['pki']>) => ({ MYNET_ETCD_CA: p.ca })],
    [
      'a CA that did not sign the server',
      (p: NonNullable<TestEtcd['pki']>) => ({ MYNET_ETCD_CA: p.otherCa, MYNET_ETCD_CERT: p.clientCert, MYNET_ETCD_KEY: p.clientKey }),
    ],
  ])('%s: refused within 3 s with CLUSTER_UNAVAILABLE, no key material in the message', async (_what, env) => {
    const pki = etcd.pki as NonNullable<TestEtcd['pki']>;
    const s = storeFrom(env(pki));
    const t0 = performance.now();
    const err = await s.listEndpoints('tls').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - t0).toBeLessThan(3300);
    expect(err).toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    const key = readFileSync(pki.clientKey, 'utf8').split('\n')[1] ?? 'no key line';
    expect(String(err)).not.toContain(key);
    expect(String(err)).toContain(etcd.endpoint);
  });

  it('the plugin itself, started with the TLS settings: present in etcd, status says etcd up, no key material in its log', async () => {
    const pki = etcd.pki as NonNullable<TestEtcd['pki']>;
    const dir = mkdtempSync(join(tmpdir(), 'mnt-tls-plugin-'));
    const log = join(dir, 'log');
    const out = openSync(log, 'a');
    // No network is created: the plugin only registers its presence (nothing on the host changes).
    const proc = spawn(process.execPath, [resolve(import.meta.dirname, '../../dist/main.js')], {
      env: {
        ...process.env,
        MYNET_SOCKET: join(dir, 'p.sock'),
        MYNET_ADMIN_SOCKET: join(dir, 'a.sock'),
        MYNET_STATE_DIR: join(dir, 'state'),
        MYNET_DNS_LISTEN: '',
        MYNET_LOG_LEVEL: 'trace',
        DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`,
        MYNET_ETCD_ENDPOINTS: etcd.endpoint,
        MYNET_ETCD_CA: pki.ca,
        MYNET_ETCD_CERT: pki.clientCert,
        MYNET_ETCD_KEY: pki.clientKey,
        MYNET_NODE_NAME: 'host-tls-plugin',
        MYNET_NODE_ADDRESS: '198.18.0.77',
      },
      stdio: ['ignore', out, out],
    });
    try {
      const get = (path: string): Promise<string> =>
        new Promise((res, rej) => {
          const r = request({ socketPath: join(dir, 'a.sock'), path }, (m) => {
            let body = '';
            m.on('data', (c: Buffer) => (body += c.toString()));
            m.on('end', () => res(body));
          });
          r.on('error', rej);
          r.end();
        });
      const status = async (): Promise<{ cluster?: { etcd: string; members: { name: string; up?: boolean }[] } }> =>
        JSON.parse(await get('/status')) as { cluster?: { etcd: string; members: { name: string; up?: boolean }[] } };
      let st: Awaited<ReturnType<typeof status>> | undefined;
      const present = async (): Promise<boolean> => {
        st = await status();
        return st.cluster?.members.some((m) => m.name === 'host-tls-plugin' && m.up) ?? false;
      };
      await waitUntil('the plugin present in the cluster over TLS', present, { ms: 10_000, every: 100, retryErrors: true, show: () => st });
      expect(st?.cluster).toMatchObject({ etcd: 'up', members: [{ name: 'host-tls-plugin', up: true }] });
      const metrics = await get('/metrics');
      expect(metrics).toMatch(/^mynet_cluster_etcd_up 1$/m);
      expect(metrics).toMatch(/^mynet_cluster_remote_endpoints 0$/m);
      expect(metrics).toContain('mynet_cluster_watch_lag_seconds_bucket');
      const text = readFileSync(log, 'utf8');
      expect(text).toContain('"tls":true');
      for (const f of [pki.clientKey, pki.clientCert]) {
        for (const line of readFileSync(f, 'utf8').split('\n').slice(1, -2)) if (line.length > 20) expect(text).not.toContain(line);
      }
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
