/**
 * Network policy through the real plugin (issue 25): namespaced "containers" with
 * `mynet.label.app` driver options on one mynet network (ICC on), policies applied and removed
 * through Plugin.applyPolicies / removePolicy as the admin socket calls them. Allowed flows
 * pass and their replies come back, the rest is dropped and counted under the policy; a
 * long-lived allowed TCP connection survives an unrelated policy and a new endpoint; the doctor
 * sees the real table as the model says, lists a policy set element deleted or added by hand and
 * repairs it; removing the policies restores the old behaviour, and
 * deleting the network leaves no table. One world for all of it. Names: mnt-mnpo*, 10.222.1.0/24.
 */
import { describe, expect, it } from 'vitest';
import { short } from '../../src/plan/link-names.js';
import { policyCounter } from '../../src/plan/policy-nft.js';
import { groupId } from '../../src/policy/compile.js';
import { parsePolicyText } from '../../src/policy/document.js';
import { createNetns, dockerId, type TestNetns } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { background, cleanUpServersAndNamespaces, serve, tcpAsk } from './nat-fixture.js';
import { buildPlugin, createNetwork, hostLikeFilter, ipOf, log, plugContainer, type CreatedNetwork } from './plugin-fixture.js';
import type { Plugin } from '../../src/plugin.js';

cleanUpServersAndNamespaces();

const PREFIX = 'mnt-mnpo';

/** A container with `app=<app>`: RequestAddress, CreateEndpoint with the label option, Join, plugged as dockerd does. */
async function labelled(
  plugin: Plugin,
  host: TestNetns,
  net: CreatedNetwork,
  app: string,
): Promise<{ box: TestNetns; ip: string; id: string }> {
  const a = await plugin.requestAddress({ PoolID: net.poolId4, Address: '', Options: {} }, log);
  const id = dockerId();
  const res = await plugin.createEndpoint(
    {
      NetworkID: net.id,
      EndpointID: id,
      Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
      Options: { 'mynet.label.app': app },
    },
    log,
  );
  const j = await plugin.join({ NetworkID: net.id, EndpointID: id, SandboxKey: `/var/run/docker/netns/${id.slice(0, 12)}` }, log);
  const box = await createNetns({ prefix: PREFIX });
  const ep = {
    id,
    networkId: net.id,
    address: a.Address,
    mac: res.Interface?.MacAddress ?? '',
    srcName: j.InterfaceName.SrcName,
    dstPrefix: j.InterfaceName.DstPrefix,
  };
  await plugContainer(host, box, { ...ep, ...(j.Gateway ? { gateway: j.Gateway } : {}) });
  return { box, ip: ipOf(a.Address), id };
}

const policy = (net: string, ports: string): string => `name: db-from-web
network: ${net}
select: { app: db }
ingress:
  - from: [ { app: web } ]
    ports: [ ${ports} ]
`;

describe('network policy through the plugin, real kernel', () => {
  it('allowed passes with its replies, the rest is dropped and counted, a connection survives unrelated changes, removal restores, teardown leaves nothing', async () => {
    const host = await createNetns({ prefix: PREFIX });
    await hostLikeFilter(host);
    const plugin = buildPlugin(host);
    const net = await createNetwork(plugin, { v4Pool: '10.222.1.0/24' });
    const db = await labelled(plugin, host, net, 'db');
    const web = await labelled(plugin, host, net, 'web');
    const other = await labelled(plugin, host, net, 'other');
    await serve(db.box, 'db', { tcp: [5432, 80] });
    await serve(other.box, 'other', { tcp: [80] });

    // No policy: everyone reaches db (today's behaviour).
    expect(await tcpAsk(other.box, db.ip, 5432)).toBe(`db from ${other.ip}`);

    await plugin.applyPolicies(parsePolicyText('policy', policy(net.id.slice(0, 12), 'tcp/5432, tcp/5433')), new Map(), log);
    expect(await tcpAsk(web.box, db.ip, 5432)).toBe(`db from ${web.ip}`); // allowed, and its reply passes
    expect(await tcpAsk(other.box, db.ip, 5432, false)).toBeUndefined(); // not from web
    expect(await tcpAsk(web.box, db.ip, 80, false)).toBeUndefined(); // not that port
    expect(await tcpAsk(db.box, other.ip, 80)).toBe(`other from ${db.ip}`); // db is not limited going out
    const counted = await host.run(['nft', 'list', 'counter', 'inet', 'mynet', policyCounter(net.id, 'db-from-web')]);
    expect(Number(/packets (\d+)/.exec(counted)?.[1])).toBeGreaterThan(0);
    // The doctor reads the real table (counter maps included) as the model writes it.
    expect(await plugin.doctor(log, 'none')).toEqual([]);

    // A policy set changed by hand: web's address deleted from the "from web" set cuts web off,
    // and other's address added to it would let other in. The doctor lists each, changing
    // nothing; a repair brings the set back to what the records say.
    const fromWeb = `pg4-${short(net.id)}-${groupId([{ app: 'web' }])}`;
    const element = async (verb: 'add' | 'delete', ip: string): Promise<void> => {
      await host.run(['nft', verb, 'element', 'inet', 'mynet', fromWeb, `{ ${ip} }`]);
    };
    await element('delete', web.ip);
    expect(await tcpAsk(web.box, db.ip, 5432, false)).toBeUndefined();
    const found = await plugin.doctor(log, 'none');
    expect(found.map((r) => [r.difference.kind, r.difference.detail, r.repaired])).toEqual([
      ['missing', `missing ${fromWeb} ${web.ip}`, false],
    ]);
    expect(await plugin.doctor(log, 'safe')).toMatchObject([{ repaired: true }]);
    expect(await tcpAsk(web.box, db.ip, 5432)).toBe(`db from ${web.ip}`);
    await element('add', other.ip);
    expect((await plugin.doctor(log, 'none')).map((r) => [r.difference.kind, r.difference.detail])).toEqual([
      ['drift', `the rules of sets (${fromWeb} ${other.ip} no record explains) are not as mynet writes them`],
    ]);
    expect(await plugin.doctor(log, 'safe')).toMatchObject([{ repaired: true }]);
    expect(await tcpAsk(other.box, db.ip, 5432, false)).toBeUndefined();
    expect(await plugin.doctor(log, 'none')).toEqual([]);

    // A long-lived allowed connection (web → db:5433, an echo), then unrelated changes.
    const echo = await background(
      db.box,
      `require('net').createServer((s) => s.pipe(s)).listen(5433, () => console.log('ready'));`,
      [],
      'ready',
    );
    const talk = await background(
      web.box,
      `const s = require('net').connect(5433, process.argv[1], () => console.log('ready')); let n = 0; s.setEncoding('utf8'); s.on('data', (d) => console.log('echo ' + d.trim().split('\\n').pop())); s.on('error', (e) => console.log('error ' + e.code)); setInterval(() => s.write('n' + n++ + '\\n'), 100);`,
      [db.ip],
      'ready',
    );
    await waitUntil('echoes through the allowed connection', () => talk.lines.filter((l) => l.startsWith('echo ')).length >= 3);
    const before = talk.lines.length;
    await plugin.applyPolicies(
      parsePolicyText('policy', `name: other-open\nnetwork: ${net.id}\nselect: { app: other }\ningress: [ {} ]\n`),
      new Map(),
      log,
    );
    const web2 = await labelled(plugin, host, net, 'web'); // an endpoint added: set elements change
    await waitUntil('echoes after the changes', () => talk.lines.length >= before + 5);
    expect(talk.lines.filter((l) => l.startsWith('error'))).toEqual([]);
    talk.stop();
    echo.stop();
    // The new web endpoint is let in at once; other-open lets anyone reach other.
    expect(await tcpAsk(web2.box, db.ip, 5432)).toBe(`db from ${web2.ip}`);
    expect(await tcpAsk(db.box, other.ip, 80)).toBe(`other from ${db.ip}`);

    // Removed: everyone reaches db again, and no policy object is left.
    await plugin.removePolicy('db-from-web', log);
    await plugin.removePolicy('other-open', log);
    expect(await tcpAsk(other.box, db.ip, 5432)).toBe(`db from ${other.ip}`);
    expect(await host.run(['nft', 'list', 'table', 'inet', 'mynet'])).not.toMatch(/policy-|pg4-|pp4-|counter pc-/);
    expect(await plugin.doctor(log, 'none')).toEqual([]);

    // Applied once more, then everything deleted as dockerd does: no table, no policy left.
    await plugin.applyPolicies(parsePolicyText('policy', policy(net.id, 'tcp/5432')), new Map(), log);
    for (const e of [db, web, other, web2]) {
      await plugin.leave({ NetworkID: net.id, EndpointID: e.id }, log);
      await plugin.deleteEndpoint({ NetworkID: net.id, EndpointID: e.id }, log);
    }
    await plugin.deleteNetwork({ NetworkID: net.id }, log);
    expect(plugin.state.policies.size).toBe(0);
    expect(await host.succeeds(['nft', 'list', 'table', 'inet', 'mynet'])).toBe(false);
  });
});
