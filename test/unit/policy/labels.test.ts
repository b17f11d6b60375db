import { describe, expect, it } from 'vitest';
import { checkLabels, labelsFromOptions, LABELS_MAX, matches } from '../../../src/rules/label.js';

describe('endpoint labels from driver options', () => {
  it('takes mynet.label.* keys and leaves every other option alone', () => {
    const opts = { 'mynet.label.app': 'web', 'mynet.label.tier': 'front-1', 'com.docker.network.portmap': [], other: 'x' };
    expect(labelsFromOptions(opts)).toEqual({ app: 'web', tier: 'front-1' });
    expect(labelsFromOptions(null)).toEqual({});
  });

  it.each([
    [{ 'mynet.label.': 'web' }, /Options\.mynet\.label\.: label key "" is not/],
    [{ 'mynet.label.a b': 'web' }, /label key "a b"/],
    [{ 'mynet.label.app': 'we;b' }, /Options\.mynet\.label\.app: label value "we;b"/],
    [{ 'mynet.label.app': 7 }, /label value 7/],
    [{ 'mynet.label.app': 'x'.repeat(64) }, /label value/],
    [{ [`mynet.label.${'k'.repeat(64)}`]: 'v' }, /label key/],
  ])('refuses %j naming the option', (opts, why) => {
    expect(() => labelsFromOptions(opts)).toThrow(why);
  });

  it(`refuses more than ${LABELS_MAX} labels`, () => {
    const opts = Object.fromEntries(Array.from({ length: LABELS_MAX + 1 }, (_, i) => [`mynet.label.k${i}`, 'v']));
    expect(() => labelsFromOptions(opts)).toThrow(/more than 32/);
  });

  it('checks a stored map as strictly as an option', () => {
    expect(checkLabels('r.labels', { app: '' })).toEqual({ app: '' });
    expect(() => checkLabels('r.labels', ['app'])).toThrow(/r\.labels: must be an object/);
    expect(() => checkLabels('r.labels', { 'a/b': 'x' })).toThrow(/r\.labels\.a\/b: label key/);
  });

  it('a selector matches on every key it gives (AND); the empty selector matches everything', () => {
    const l = { app: 'web', tier: 'front' };
    expect(matches({ app: 'web' }, l)).toBe(true);
    expect(matches({ app: 'web', tier: 'back' }, l)).toBe(false);
    expect(matches({ app: 'db' }, l)).toBe(false);
    expect(matches({ hasOwnProperty: 'x' }, l)).toBe(false);
    expect(matches({}, l)).toBe(true);
    expect(matches({}, {})).toBe(true);
  });
});
