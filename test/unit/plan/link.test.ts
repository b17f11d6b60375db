import { describe, expect, it } from 'vitest';
import { bridgeSteps, deleteLinkStep, macFromIPv4, macFromId, vethSteps } from '../../../src/plan/link.js';
import { renderPlan } from '../../../src/plan/step.js';

const NID = 'c38af9122a9a1c8bf8eeb6ece822e1bb24d7013aa212796ca4e1f1332a0bd1df';
const EID = 'eaa9b94eff48d101a249b461e493f6a08e25aead22365c6a3a8dab89d7a9574e';

describe('macFromIPv4', () => {
  it("is Docker's: 02:42 and the four address bytes", () => {
    expect(macFromIPv4('172.17.0.2/16')).toBe('02:42:ac:11:00:02');
    expect(macFromIPv4('10.255.0.1/8')).toBe('02:42:0a:ff:00:01');
  });
});

describe('macFromId', () => {
  it('is a locally administered unicast MAC made from the id', () => {
    expect(macFromId(NID)).toBe('02:c3:8a:f9:12:2a');
    expect(macFromId(EID)).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });
});

describe('bridgeSteps', () => {
  it('IPv4 bridge with its gateway', async () => {
    const plan = bridgeSteps({ networkId: NID, name: 'mn-c38af9122a9a', mtu: 1500, addresses: ['10.1.0.1/24'] });
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/link-bridge-v4.txt');
    // Only the create has an undo; it is an ownership-checked delete.
    expect(plan.filter((s) => s.undo)).toEqual([expect.objectContaining({ undo: { kind: 'link-del', name: 'mn-c38af9122a9a' } })]);
    expect(plan[0]?.run).toEqual({ kind: 'link-del', name: 'mn-c38af9122a9a' });
  });

  it('dual stack gets nodad on the IPv6 gateway only', async () => {
    const plan = bridgeSteps({ networkId: NID, name: 'mybr0', mtu: 1400, addresses: ['10.150.0.254/16', 'fd00:150::2/64'] });
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/link-bridge-dual.txt');
  });

  it('no gateway, no address step', () => {
    const plan = bridgeSteps({ networkId: NID, name: 'br', mtu: 1500, addresses: [] });
    expect(plan.map((s) => s.what)).toEqual(['remove leftover bridge br', 'create bridge br', 'mark bridge br', 'bring up bridge br']);
  });
});

describe('vethSteps', () => {
  it('one command makes the pair on the bridge', async () => {
    const plan = vethSteps({
      networkId: NID,
      endpointId: EID,
      bridge: 'mybr0',
      hostIf: 'mnheaa9b94eff48',
      containerIf: 'mnceaa9b94eff48',
      mtu: 1400,
      mac: '02:42:0a:96:05:14',
    });
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/link-veth.txt');
    expect(plan[1]?.undo).toEqual({ kind: 'link-del', name: 'mnheaa9b94eff48' });
  });
});

describe('deleteLinkStep', () => {
  it('is an ownership-checked delete', () => {
    expect(deleteLinkStep('x', 'delete x')).toEqual({ what: 'delete x', run: { kind: 'link-del', name: 'x' } });
  });
});
