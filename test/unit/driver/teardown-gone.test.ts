/**
 * Teardown of what is already gone (issue 22, finding 24): every nft removal in a teardown plan
 * is marked so the executor counts it done when mynet's table is gone (host/execa-executor.ts,
 * test/unit/host/nft-teardown.test.ts), and none adds the table back; every element a teardown
 * deletes is in a map the script declares first, so a map removed by hand does not fail it.
 */
import { describe, expect, it } from 'vitest';
import { deleteEndpoint, leave } from '../../../src/driver/endpoint.js';
import { deleteNetwork } from '../../../src/driver/network.js';
import { revokeExternalConnectivity } from '../../../src/driver/ports.js';
import { BASE_SETS, TABLE } from '../../../src/plan/nft-model.js';
import type { HostPlan } from '../../../src/plan/step.js';
import { guardTeardownCommands } from '../../../src/plan/vxlan-firewall.js';
import type { NftCommand } from '../../../src/plan/nft-change.js';
import { DUAL, E1, E2, fixtureState } from '../doctor/fixture.js';

const nftOps = (plan: HostPlan) => plan.flatMap((s) => (s.run.kind === 'nft' ? [s.run] : []));

/** Sets whose elements a change touches, and the sets it declares (read from the typed commands). */
function setsOf(commands: readonly NftCommand[]): { touched: Set<string>; declared: Set<string> } {
  const touched = new Set(commands.flatMap((c) => (c.object.obj === 'element' ? [c.object.set] : [])));
  const declared = new Set(commands.flatMap((c) => (c.verb === 'add' && c.object.obj === 'set' ? [c.object.set.name] : [])));
  return { touched, declared };
}
const addsTable = (commands: readonly NftCommand[]): boolean => commands.some((c) => c.verb === 'add' && c.object.obj === 'table');

describe('teardown plans when the objects are gone', () => {
  const s = fixtureState();
  const plans: [string, HostPlan][] = [
    ['DeleteNetwork (not the last)', deleteNetwork(s, DUAL).plan],
    ['DeleteEndpoint', deleteEndpoint(s, { NetworkID: DUAL, EndpointID: E1 }).plan],
    ['Leave', leave(s, { NetworkID: DUAL, EndpointID: E2 }).plan],
    ['RevokeExternalConnectivity', revokeExternalConnectivity(s, { NetworkID: DUAL, EndpointID: E1 }).plan],
  ];

  it.each(plans)("%s: every nft step is a teardown of mynet's table that does not make the table", (_what, plan) => {
    const ops = nftOps(plan);
    expect(ops.length).toBeGreaterThan(0);
    for (const op of ops) {
      expect(op.table).toBe(TABLE);
      expect(op.absentTableOk).toBe(true);
      expect(addsTable(op.commands)).toBe(false);
    }
  });

  it.each(plans)('%s: every map it takes elements out of is declared first (a base map deleted by hand)', (_what, plan) => {
    for (const op of nftOps(plan)) {
      const { touched, declared } = setsOf(op.commands);
      for (const set of touched) if (BASE_SETS.some((b) => b.name === set)) expect(declared).toContain(set);
    }
  });

  it("the VXLAN guard's teardown does not make the table again", () => {
    expect(addsTable(guardTeardownCommands(DUAL))).toBe(false);
  });
});
