/**
 * Issue 22, finding 9 (multihost/readdress.ts, pure): whether the address the plugin runs with
 * still fits the host, by where it came from, and one log line per change of that.
 */
import { describe, expect, it } from 'vitest';
import { PLAIN, renderCluster } from '../../../src/cli/render.js';
import { addressMove, moveChange, moveDifferences, moveStatus } from '../../../src/multihost/readdress.js';

const OLD = '198.18.205.2';
const NEW = '198.18.205.12';

describe('addressMove', () => {
  it('detected: moved when the source towards etcd is another address', () => {
    expect(addressMove(OLD, 'detected', { source: NEW, held: false })).toEqual({ running: OLD, now: NEW, setting: 'detected' });
    // The old one still held but no longer the source: moved too (the other hosts see the new one).
    expect(addressMove(OLD, 'detected', { source: NEW, held: true })).toMatchObject({ now: NEW });
    expect(addressMove(OLD, 'detected', { source: OLD, held: true })).toBeUndefined();
  });

  it('detected: no route while the address is held is etcd trouble, not a move; with the address gone it is', () => {
    expect(addressMove(OLD, 'detected', { error: 'ENETUNREACH', held: true })).toBeUndefined();
    expect(addressMove(OLD, 'detected', { error: 'ENETUNREACH', held: false })).toEqual({
      running: OLD,
      now: 'none (ENETUNREACH)',
      setting: 'detected',
    });
  });

  it('set: never moved from while an interface holds it, whatever the source towards etcd; reported once none does', () => {
    expect(addressMove(OLD, 'MYNET_NODE_ADDRESS', { source: NEW, held: true })).toBeUndefined();
    const m = addressMove(OLD, 'MYNET_NODE_ADDRESS', { source: NEW, held: false });
    expect(m).toEqual({ running: OLD, now: NEW, setting: 'MYNET_NODE_ADDRESS' });
    expect(moveDifferences(m)[0]?.detail).toContain(`MYNET_NODE_ADDRESS=${OLD} is held by no interface of this host`);
  });
});

describe('moveChange and the doctor line', () => {
  const m = { running: OLD, now: NEW, setting: 'detected' as const };

  it('one error line for a move, none while it stays, one info line when it fits again', () => {
    expect(moveChange(undefined, m)).toMatchObject({
      level: 'error',
      message: expect.stringContaining(`now ${NEW}, the plugin runs with ${OLD}`) as string,
    });
    expect(moveChange(m, { ...m })).toBeUndefined();
    expect(moveChange(m, { ...m, now: '198.18.205.13' })?.level).toBe('error');
    expect(moveChange(m, undefined)?.level).toBe('info');
    expect(moveChange(undefined, undefined)).toBeUndefined();
  });

  it('the doctor lists a move, not repaired, with what to do', () => {
    expect(moveDifferences(undefined)).toEqual([]);
    const [d] = moveDifferences(m);
    expect(d).toMatchObject({ object: "this host's underlay address", fix: [] }); // nothing to run: never repaired
    expect(d?.detail).toContain(`runs with ${OLD}, its address is now ${NEW}`);
    expect(d?.detail).toContain(`restart the plugin: it takes ${NEW} at start`);
  });
});

describe('mynet status', () => {
  it('shows a move on a line of its own, with both addresses and what to do; nothing without one', () => {
    const base = { node: 'b', address: OLD, etcd: 'up' as const, networks: [], members: [] };
    const m = moveStatus({ running: OLD, now: NEW, setting: 'detected' });
    const lines = renderCluster({ ...base, ...(m && { addressMoved: m }) }, PLAIN);
    expect(lines[1]).toBe(
      `  ADDRESS MOVED: runs with ${OLD}, this host's address is now ${NEW}; restart the plugin: it takes ${NEW} at start and every cluster network follows`,
    );
    expect(renderCluster(base, PLAIN).join('\n')).not.toContain('ADDRESS MOVED');
  });
});
