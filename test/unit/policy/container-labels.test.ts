/**
 * Issue 25: container labels (`docker run --label mynet.label.app=web`) count for policy where
 * the Docker socket is on. The Engine API follow (a fake engine, nock) learns each endpoint's
 * container labels, checked with the driver options' rules (bad ones ignored and logged once);
 * Plugin.relabel saves them on the record, merged under the driver-opt labels (a driver option
 * wins a clash), and the network's policy follows in one step; unchanged, nothing runs again.
 * On a cluster network the record is published again with the labels, and the other host lets
 * the endpoint in by them.
 */
import nock from 'nock';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { Engine, dockerTarget } from '../../../src/dns/engine.js';
import { DockerNameSync, endpointLabelsSeen } from '../../../src/dns/sync.js';
import { policyObjectsOf } from '../../../src/driver/policy.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import type { Plugin } from '../../../src/plugin.js';
import { parsePolicyText } from '../../../src/policy/document.js';
import { LABELS_MAX, endpointLabels, fitContainerLabels, labelsFromContainer } from '../../../src/rules/label.js';
import { statusView } from '../../../src/admin/views.js';
import { checkEndpointRecord } from '../../../src/store/records.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { fakeEngine } from '../../helpers/fake-engine.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { testPlugin } from '../../helpers/test-plugin.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const BASE = 'http://127.0.0.1:2375';
const NET = hexId(0xc1);
const [WEB, DB] = [hexId(0xc2), hexId(0xc3)];
const policy = (network: string): ReturnType<typeof parsePolicyText> =>
  parsePolicyText('policy', `name: web-from-db\nnetwork: ${network}\nselect: { app: web }\ningress:\n  - from: [ { app: db } ]\n`);

const agents: ClusterAgent[] = [];
let sync: DockerNameSync | undefined;
afterEach(async () => {
  sync?.stop();
  sync = undefined;
  nock.cleanAll();
  nock.enableNetConnect();
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

async function localEndpoint(plugin: Plugin, id: string, options: Record<string, string>): Promise<string> {
  const pool = [...plugin.state.pools.values()][0]?.record.id as string;
  const ip = await plugin.requestAddress({ PoolID: pool }, log);
  await plugin.createEndpoint({ NetworkID: NET, EndpointID: id, Interface: { Address: ip.Address }, Options: options }, log);
  return ip.Address.split('/')[0] as string;
}

describe('container labels for network policy (issue 25)', () => {
  it('the rules: checked as driver options, bad ones named and ignored, at most 32 kept; a driver option wins a clash', () => {
    const r = labelsFromContainer({
      'mynet.label.app': 'web',
      'mynet.label.bad key': 'x',
      'mynet.label.tier': 'has space',
      'mynet.label.empty': '',
      'com.example.other': 'not ours',
    });
    expect(r.labels).toEqual({ app: 'web', empty: '' });
    expect(r.refused).toEqual([
      expect.stringMatching(/^Config\.Labels\.mynet\.label\.bad key: label key "bad key" is not/),
      expect.stringMatching(/^Config\.Labels\.mynet\.label\.tier: label value "has space" is not/),
    ]);
    const many = labelsFromContainer(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`mynet.label.k${i}`, 'v'])));
    expect(Object.keys(many.labels)).toHaveLength(LABELS_MAX);
    expect(many.refused).toEqual([`${5000 - LABELS_MAX} more mynet.label.* labels ignored (an endpoint carries at most ${LABELS_MAX})`]);
    expect(labelsFromContainer(null)).toEqual({ labels: {}, refused: [] });

    const fit = fitContainerLabels({ role: 'back' }, { role: 'front', app: 'web' });
    expect(fit).toEqual({ labels: { app: 'web' }, cut: [] });
    expect(endpointLabels({ labels: { role: 'back' }, containerLabels: fit.labels })).toEqual({ role: 'back', app: 'web' });
    const full = Object.fromEntries(Array.from({ length: LABELS_MAX }, (_, i) => [`d${i}`, 'v']));
    expect(fitContainerLabels(full, { app: 'web' })).toEqual({ labels: {}, cut: ['app'] });
    // The journal holds an endpoint to the same bound as every host's record check.
    const rec = { id: WEB, networkId: NET, hostIf: 'mnh1', containerIf: 'mnc1', mac: '02:42:0a:00:00:02', ports: [], labels: full };
    expect(() => checkEndpointRecord({ ...rec, containerLabels: { app: 'web' } })).toThrow(/containerLabels: with labels makes 33 labels/);
    expect(() => checkEndpointRecord({ ...rec, labels: {}, containerLabels: { 'a b': 'x' } })).toThrow(/containerLabels\.a b: label key/);
  });

  it('the follow of a fake engine: labels merged under the driver options, bad ones logged once, the policy recompiled once', async () => {
    nock.disableNetConnect();
    const t = testPlugin();
    const { plugin } = t;
    const pool = await plugin.requestPool({ Pool: '10.231.0.0/24' }, log);
    const gw = await plugin.requestAddress({ PoolID: pool.PoolID, Options: { RequestAddressType: 'com.docker.network.gateway' } }, log);
    await plugin.createNetwork({ NetworkID: NET, Options: {}, IPv4Data: [{ Pool: '10.231.0.0/24', Gateway: gw.Address }] }, log);
    const webIp = await localEndpoint(plugin, WEB, { 'mynet.label.role': 'back' });
    await localEndpoint(plugin, DB, { 'mynet.label.app': 'db' });
    await plugin.applyPolicies(policy(NET), new Map(), log);
    // web has no app label yet: the policy selects nothing.
    expect(JSON.stringify(policyObjectsOf(plugin.state, NET)?.sets)).not.toContain(`"${webIp}"`);

    const inspect = {
      Id: 'c'.repeat(64),
      Name: '/mnt-mnl4-web',
      State: { Running: true },
      Config: {
        Labels: { 'mynet.label.app': 'web', 'mynet.label.role': 'front', 'mynet.label.bad key': '1', 'com.docker.compose.service': 'web' },
      },
      NetworkSettings: { Networks: { front: { NetworkID: NET, EndpointID: WEB, IPAddress: webIp, Aliases: [] } } },
    };
    const events = fakeEngine(BASE, [inspect.Id]);
    nock(BASE).get(`/v1.41/containers/${inspect.Id}/json`).times(2).reply(200, inspect);
    const warnings: Record<string, unknown>[] = [];
    const warn = pino({ level: 'warn' }, { write: (l: string) => void warnings.push(JSON.parse(l) as Record<string, unknown>) });
    const relabelled: (readonly string[])[] = [];
    const engine = new Engine(dockerTarget('tcp://127.0.0.1:2375'), 1000);
    sync = new DockerNameSync({
      zone: 'mynet',
      engine,
      log: warn,
      isOurNetwork: () => true,
      backoff: { firstMs: 10, maxMs: 50 },
      // As main.ts wires it.
      onChange: () => void plugin.relabel(endpointLabelsSeen(sync?.containerList() ?? []), log).then((r) => relabelled.push(r)),
    });
    const callsBefore = t.exec.calls.length;
    const commitsBefore = t.store.committed.length;
    sync.start();
    await waitUntil('the container labels saved', () => plugin.state.endpoints.get(WEB)?.containerLabels !== undefined);
    const e = plugin.state.endpoints.get(WEB);
    expect(e?.containerLabels).toEqual({ app: 'web' }); // role is the driver option's
    expect(e && endpointLabels(e)).toEqual({ role: 'back', app: 'web' });
    expect(JSON.stringify(policyObjectsOf(plugin.state, NET)?.sets)).toContain(`"${webIp}"`);
    expect(t.store.committed.length - commitsBefore).toBe(1);
    const steps = t.exec.calls.slice(callsBefore);
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.map((c) => JSON.stringify(c.op)).join('\n')).toContain(webIp);
    expect(warnings.map((w) => w.msg)).toEqual(['policy: container labels ignored (they do not check)']);
    expect(JSON.stringify(warnings[0]?.refused)).toContain('bad key');
    expect(statusView(plugin.state, { networks: new Map(), endpoints: new Map() })[0]?.endpoints.find((x) => x.id === WEB)).toMatchObject({
      labels: { role: 'back', app: 'web' },
      policies: ['web-from-db'],
    });

    // Another event about the container: the same labels, nothing runs or is saved again, nothing logged again.
    const seen = relabelled.length;
    events.push(`${JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: inspect.Id } })}\n`);
    await waitUntil('the event followed', () => relabelled.length > seen);
    expect(t.store.committed.length - commitsBefore).toBe(1);
    expect(t.exec.calls.length - callsBefore).toBe(steps.length);
    expect(warnings).toHaveLength(1);
  });

  it('on a cluster network the record is published again with the container labels, and the other host lets the endpoint in by them', async () => {
    const kv = new MemoryKv();
    const a = clusterHost(kv, 'host-a', '198.18.209.1');
    const b = clusterHost(kv, 'host-b', '198.18.209.2');
    agents.push(a.agent, b.agent);
    const [na, nb] = [hexId(0xa5), hexId(0xb5)];
    const pa = await clusterNetwork(a, { network: na, pool: '10.231.0.0/16', cluster: 'mnl4' });
    const pb = await clusterNetwork(b, { network: nb, pool: '10.231.0.0/16', cluster: 'mnl4' });
    // A's endpoint is protected (app=web by driver option); B's, with no driver option, is to be let in.
    const [PROTECTED, SOURCE] = [hexId(0xc4), hexId(0xc5)];
    const protectedIp = (await a.plugin.requestAddress({ PoolID: pa }, log)).Address;
    await a.plugin.createEndpoint(
      { NetworkID: na, EndpointID: PROTECTED, Interface: { Address: protectedIp }, Options: { 'mynet.label.app': 'web' } },
      log,
    );
    const ip = (await b.plugin.requestAddress({ PoolID: pb }, log)).Address;
    await b.plugin.createEndpoint({ NetworkID: nb, EndpointID: SOURCE, Interface: { Address: ip }, Options: {} }, log);
    const sourceIp = ip.split('/')[0] as string;
    const record = async (): Promise<{ labels?: unknown }> =>
      JSON.parse((await kv.get(keys.endpoint('mnl4', SOURCE)))?.value ?? '{}') as { labels?: unknown };
    expect((await record()).labels).toBeUndefined();
    await a.plugin.applyPolicies(policy('mnl4'), new Map(), log);
    await waitUntil('A enforces the policy', () => policyObjectsOf(a.plugin.state, na) !== undefined);
    expect(JSON.stringify(policyObjectsOf(a.plugin.state, na)?.sets)).not.toContain(`"${sourceIp}"`);

    // B's follow saw the container labelled app=db: its record carries it, and A lets it in.
    expect(await b.plugin.relabel(new Map([[SOURCE, { app: 'db' }]]), log)).toEqual([SOURCE]);
    await waitUntil('the record published again with the labels', async () => JSON.stringify((await record()).labels) === '{"app":"db"}');
    await waitUntil("A lets B's endpoint in by its container label", () =>
      JSON.stringify(policyObjectsOf(a.plugin.state, na)?.sets).includes(`"${sourceIp}"`),
    );
    // Seen again, unchanged: nothing saved, nothing published.
    const revision = (await kv.get(keys.endpoint('mnl4', SOURCE)))?.modRevision;
    expect(await b.plugin.relabel(new Map([[SOURCE, { app: 'db' }]]), log)).toEqual([]);
    b.agent.namesChanged();
    await b.plugin.drain();
    expect((await kv.get(keys.endpoint('mnl4', SOURCE)))?.modRevision).toBe(revision);
  });
});
