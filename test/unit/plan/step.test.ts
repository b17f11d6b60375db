import { describe, expect, it } from 'vitest';
import { type HostPlan, renderOp, renderPlan } from '../../../src/plan/step.js';

describe('renderOp / renderPlan', () => {
  it('renders every kind of op on its own terms', () => {
    expect(renderOp({ kind: 'ip', args: ['link', 'set', 'dev', 'x', 'up'] })).toBe('ip link set dev x up');
    expect(renderOp({ kind: 'ip', args: ['link', 'del', 'dev', 'x'], absentOk: true })).toBe('ip link del dev x  [absent ok]');
    expect(renderOp({ kind: 'link-del', name: 'mn-1' })).toBe('ip link del mn-1  [if ours; absent ok]');
    expect(renderOp({ kind: 'nft', script: 'add table inet mynet\n\n' })).toBe('nft -f - <<\nadd table inet mynet\n>>');
    expect(renderOp({ kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' })).toBe('sysctl net/ipv4/ip_forward=1');
    expect(renderOp({ kind: 'forward-hook', action: 'ensure' })).toBe('forward-hook ensure');
    expect(renderOp({ kind: 'forward-hook', action: 'remove' })).toBe('forward-hook remove');
  });

  it('renders a plan with comments and undo lines', async () => {
    const plan: HostPlan = [
      { what: 'enable forwarding', run: { kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' } },
      { what: 'make a thing', run: { kind: 'ip', args: ['link', 'add', 'name', 'x', 'type', 'dummy'] }, undo: { kind: 'link-del', name: 'x' } },
      { what: 'load rules', run: { kind: 'nft', script: 'table inet t {\n}\n' } },
    ];
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/plan-render-sample.txt');
    expect(renderPlan([])).toBe('');
  });
});
