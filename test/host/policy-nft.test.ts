/**
 * Policies in a real kernel (issue 25): three "containers" (namespaces) on one bridge with
 * bridged traffic passing nft (br_netfilter, as mynet sets it for a network with policies and as
 * ICC off does), the policy objects of plan/policy-nft.ts loaded by the one-transaction script.
 * Allowed flows pass, others are dropped and counted under their policy, replies pass, a
 * long-lived allowed connection survives an update of the rules, and removing the policy
 * restores the old behaviour. Names: mnt-pol*, 198.18.180.0/24.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { compileNetwork, type PolicyEndpoint } from '../../src/policy/compile.js';
import { parsePolicy, type Policy } from '../../src/policy/document.js';
import { policyChain, policyCounter, policyJump, policyObjects, policyReplaceScript } from '../../src/plan/policy-nft.js';
import { createNetns, type TestNetns } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { background, cleanUpServersAndNamespaces, serve, tcpAsk } from './nat-fixture.js';

cleanUpServersAndNamespaces();

const NET = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const TABLE = 'mnt_pol';
const BR = 'mnt-polbr';

async function nft(ns: TestNetns, script: string): Promise<void> {
  await execa('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], { input: script });
}

async function world(): Promise<{
  sw: TestNetns;
  box: Record<'db' | 'web' | 'other', TestNetns>;
  addr: Record<'db' | 'web' | 'other', string>;
}> {
  const sw = await createNetns({ prefix: 'mnt-pol' });
  await sw.run(['ip', 'link', 'add', BR, 'type', 'bridge']);
  await sw.run(['ip', 'link', 'set', BR, 'up']);
  await sw.run(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
  const addr = { db: '198.18.180.10', web: '198.18.180.3', other: '198.18.180.4' };
  const box = {} as Record<'db' | 'web' | 'other', TestNetns>;
  for (const [name, a] of Object.entries(addr) as ['db' | 'web' | 'other', string][]) {
    const ns = await createNetns({ prefix: 'mnt-pol' });
    await sw.run(['ip', 'link', 'add', `mnt-pol-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await sw.run(['ip', 'link', 'set', `mnt-pol-${name}`, 'master', BR, 'up']);
    await ns.run(['ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    await ns.run(['ip', 'link', 'set', 'eth0', 'up']);
    box[name] = ns;
  }
  // The shape of mynet's table, cut down: conntrack first, then the network's chain, which jumps to its policy chain first.
  await nft(
    sw,
    `table inet ${TABLE} {
  chain ${policyChain(NET)} { }
  chain egress { ${policyJump(NET)}; accept; }
  chain firewall { type filter hook forward priority 0; policy drop; ct state established,related accept; iifname "${BR}" jump egress; }
}\n`,
  );
  return { sw, box, addr };
}

const pol = (name: string, select: Record<string, string>, ingress: unknown[]): Policy =>
  parsePolicy(name, { name, network: 'blue', select, ingress });

describe('network policy in nft, real kernel', () => {
  it('allows what a policy allows, drops and counts the rest, passes replies, keeps an allowed connection through an update, and is undone by removal', async () => {
    const { sw, box, addr } = await world();
    const eps: PolicyEndpoint[] = [
      { addresses: [addr.db], labels: { app: 'db' } },
      { addresses: [addr.web], labels: { app: 'web' } },
      { addresses: [addr.other], labels: { app: 'other' } },
    ];
    await serve(box.db, 'db', { tcp: [5432, 80] });
    await serve(box.other, 'other', { tcp: [80] });
    const apply = async (ps: Policy[], before?: ReturnType<typeof policyObjects>): Promise<ReturnType<typeof policyObjects>> => {
      const o = policyObjects(NET, compileNetwork(ps, eps));
      await nft(sw, policyReplaceScript(TABLE, o, before));
      return o;
    };

    // No policy: everyone reaches db (today's behaviour).
    let o = await apply([]);
    expect(await tcpAsk(box.other, addr.db, 5432)).toBe(`db from ${addr.other}`);

    const dbFromWeb = pol('db-from-web', { app: 'db' }, [{ from: [{ app: 'web' }], ports: ['tcp/5432'] }]);
    o = await apply([dbFromWeb], o);
    expect(await tcpAsk(box.web, addr.db, 5432)).toBe(`db from ${addr.web}`); // allowed, and its reply passes
    expect(await tcpAsk(box.other, addr.db, 5432, false)).toBeUndefined(); // not from web
    expect(await tcpAsk(box.web, addr.db, 80, false)).toBeUndefined(); // not that port
    expect(await tcpAsk(box.db, addr.other, 80)).toBe(`other from ${addr.db}`); // db itself is not limited going out
    const counted = await sw.run(['nft', 'list', 'counter', 'inet', TABLE, policyCounter(NET, 'db-from-web')]);
    expect(Number(/packets (\d+)/.exec(counted)?.[1])).toBeGreaterThan(0);

    // A long-lived allowed connection: an echo on db, a client on web writing every 100 ms.
    o = await apply([pol('db-from-web', { app: 'db' }, [{ from: [{ app: 'web' }], ports: ['tcp/5432', 'tcp/5433'] }])], o);
    const echo = await background(
      box.db,
      `require('net').createServer((s) => s.pipe(s)).listen(5433, () => console.log('ready'));`,
      [],
      'ready',
    );
    const talk = await background(
      box.web,
      `const s = require('net').connect(5433, process.argv[1], () => console.log('ready')); let n = 0; s.setEncoding('utf8'); s.on('data', (d) => console.log('echo ' + d.trim().split('\\n').pop())); s.on('error', (e) => console.log('error ' + e.code)); setInterval(() => s.write('n' + n++ + '\\n'), 100);`,
      [addr.db],
      'ready',
    );
    await waitUntil('echoes through the allowed connection', () => talk.lines.filter((l) => l.startsWith('echo ')).length >= 3);
    // An unrelated change of rules (another policy, other sets): the connection keeps going.
    const before = talk.lines.length;
    o = await apply(
      [
        pol('db-from-web', { app: 'db' }, [{ from: [{ app: 'web' }], ports: ['tcp/5432', 'tcp/5433'] }]),
        pol('other-open', { app: 'other' }, [{}]),
      ],
      o,
    );
    await waitUntil('echoes after the update', () => talk.lines.length >= before + 5);
    expect(talk.lines.filter((l) => l.startsWith('error'))).toEqual([]);
    talk.stop();
    echo.stop();

    // Removed: everyone reaches db again, and the sets of the old policy are gone.
    await apply([], o);
    expect(await tcpAsk(box.other, addr.db, 5432)).toBe(`db from ${addr.other}`);
    const sets = await sw.run(['nft', 'list', 'sets', 'inet']);
    expect(sets.match(/set pg4-/g) ?? []).toHaveLength(0);
  });
});
