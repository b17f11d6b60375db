/**
 * "Teardown removes exactly what create made", checked without root on the fake nft
 * (test/helpers/fake-nft.ts), for local networks, published ports and the VXLAN guard; the fake
 * refuses what real nft refuses; and a cluster network's guard comes before its VXLAN device
 * (issue 22, finding 19).
 */
import { describe, expect, it } from 'vitest';
import { deleteNetwork, networkSteps } from '../../../src/driver/network.js';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { applyAll, applyPlan } from '../../../src/host/executor.js';
import { add, chainObj, del, elementObj, ruleObj, tableObj } from '../../../src/plan/nft-change.js';
import { TABLE, baseCommands, nftOp, nftTeardown, portElementCommands } from '../../../src/plan/nft.js';
import { portElements, unpublishSteps } from '../../../src/plan/ports.js';
import { renderOp } from '../../../src/plan/step.js';
import { guardCommands, guardMemberCommands, guardTeardownCommands, guardUndo } from '../../../src/plan/vxlan-firewall.js';
import { DUAL, fixtureState } from '../doctor/fixture.js';
import { FakeNft, FakeNftExecutor } from '../../helpers/fake-nft.js';
import { silentLog } from '../support.js';

const base = { what: 'ensure the mynet table', run: nftOp(baseCommands()) };

/** The fixture's networks made on a fake nft, as CreateNetwork makes them. */
async function made(): Promise<{ exec: FakeNftExecutor; state: ReturnType<typeof fixtureState> }> {
  const state = fixtureState();
  const exec = new FakeNftExecutor();
  await applyPlan(exec, [base, ...[...state.networks.values()].flatMap((n) => networkSteps(n))], silentLog);
  return { exec, state };
}

describe('fake nft: teardown removes exactly what create made', () => {
  it('local networks: deleting one leaves the table of the others; deleting the last leaves no table', async () => {
    const { exec, state } = await made();
    const ids = [...state.networks.keys()];
    expect(ids.length).toBeGreaterThan(1);
    for (const [i, id] of ids.entries()) {
      const d = deleteNetwork(state, id);
      await applyAll(exec, d.plan, silentLog);
      state.apply(d.changes);
      if (i === ids.length - 1) break;
      // What is left is what creating only the remaining networks makes.
      const fresh = new FakeNftExecutor();
      await applyPlan(fresh, [base, ...[...state.networks.values()].flatMap((n) => networkSteps(n))], silentLog);
      expect(exec.nft.dump(TABLE)).toEqual(fresh.nft.dump(TABLE));
    }
    expect(exec.nft.has(TABLE)).toBe(false);
  });

  it('published ports: unpublishing takes out exactly the elements publishing put in', async () => {
    const { exec, state } = await made();
    const before = exec.nft.dump(TABLE);
    const eps = [...state.endpoints.values()].filter((e) => e.ports.length > 0);
    expect(eps.length).toBeGreaterThan(0);
    for (const e of eps)
      await applyPlan(exec, [{ what: 'publish', run: nftOp(portElementCommands('add', portElements(e, e.ports))) }], silentLog);
    expect(exec.nft.dump(TABLE)).not.toEqual(before);
    for (const e of eps) await applyAll(exec, unpublishSteps(e), silentLog);
    expect(exec.nft.dump(TABLE)).toEqual(before);
    // A teardown run twice (dockerd retries) succeeds on what is already gone.
    for (const e of eps) await applyAll(exec, unpublishSteps(e), silentLog);
  });

  it('the VXLAN guard: members change by element, and its teardown or its undo leaves the table as before', async () => {
    const { exec } = await made();
    const before = exec.nft.dump(TABLE);
    const g = { networkId: DUAL, vni: 5000, peers: ['198.18.140.2'] };
    const run = (c: Parameters<typeof nftOp>[0]): Promise<void> => exec.run(nftOp(c), silentLog);
    await run(guardCommands(g));
    await run(guardMemberCommands(DUAL, ['198.18.140.3'], ['198.18.140.2']));
    expect(exec.nft.dump(TABLE)?.elements.get(`vxpeers-${DUAL.slice(0, 12)}`)).toEqual(['198.18.140.3']);
    await exec.run(nftTeardown(guardTeardownCommands(DUAL)), silentLog);
    expect(exec.nft.dump(TABLE)).toEqual(before);
    expect(exec.nft.counters(TABLE)).toEqual([]);
    await run(guardCommands(g));
    await run(guardUndo(g));
    expect(exec.nft.dump(TABLE)).toEqual(before);
  });
});

describe('fake nft refuses what nft refuses', () => {
  const T = 'inet mnt-nw';
  const change =
    (...commands: Parameters<FakeNft['apply']>[1]): ((n: FakeNft) => void) =>
    (n) =>
      n.apply(T, commands);
  it.each([
    ['anything without the table', change(add(chainObj('c')))],
    ['a rule in a missing chain', change(add(tableObj()), add(ruleObj('nosuch', { text: 'accept', id: 'x' })))],
    [
      'a rule naming a missing set',
      change(add(tableObj()), add(chainObj('c')), add(ruleObj('c', { text: 'ip saddr @nosuch drop', id: 'x' }))),
    ],
    ['deleting an absent chain', change(add(tableObj()), del(chainObj('c')))],
    ['deleting an absent element', change(...baseCommands().map((c) => c), del(elementObj('masq4', [{ key: '10.0.0.0/8' }])))],
    [
      'a chain still jumped to',
      change(
        ...baseCommands(),
        add(chainObj('egress-x')),
        add(elementObj('egress', [{ key: '"mn-x"', value: 'jump egress-x' }])),
        del(chainObj('egress-x')),
      ),
    ],
  ])('%s, and nothing of the change applies', (_what, f) => {
    const n = new FakeNft();
    expect(() => f(n)).toThrow(/No such file or directory|Device or resource busy/);
    expect(n.has(T) || n.has(TABLE)).toBe(false);
  });
});

describe("a cluster network's plan (issue 22, finding 19)", () => {
  it('the VXLAN guard exists before the VXLAN device is made and set up', () => {
    const n = fixtureState().networks.get(DUAL) as NetworkRecord;
    const c: NetworkRecord = {
      ...n,
      cluster: {
        name: 'nw1',
        subnet: '10.214.0.0/24',
        gateway: '10.214.0.1',
        gatewayMac: '02:42:0a:d6:00:01',
        vni: 5140,
        mtu: 1450,
        local: '198.18.140.1',
      },
    };
    const lines = networkSteps(c).map((s) => `${s.what}: ${renderOp(s.run)}`);
    const guard = lines.findIndex((l) => l.includes('add rule inet mynet vxlan-in-'));
    const device = lines.findIndex((l) => l.includes('type vxlan'));
    const up = lines.findIndex((l) => l.startsWith('attach vxlan') && l.endsWith(' up'));
    expect(guard).toBeGreaterThanOrEqual(0);
    expect(device).toBeGreaterThan(guard);
    expect(up).toBeGreaterThan(guard);
  });
});
