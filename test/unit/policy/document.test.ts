import { describe, expect, it } from 'vitest';
import { formatPortSpec, parsePolicy, parsePolicyText, POLICY_LIMITS } from '../../../src/policy/document.js';

const good = {
  name: 'db-from-web',
  network: 'blue',
  select: { app: 'db' },
  ingress: [{ from: [{ app: 'web' }], ports: ['tcp/5432', 'udp/6000-6010'] }],
};

describe('a policy document', () => {
  it('parses the example of the README', () => {
    const p = parsePolicy('policy', good);
    expect(p).toEqual({
      ...good,
      ingress: [
        {
          from: [{ app: 'web' }],
          ports: [
            { proto: 'tcp', from: 5432, to: 5432 },
            { proto: 'udp', from: 6000, to: 6010 },
          ],
        },
      ],
    });
    expect(p.ingress[0]?.ports?.map(formatPortSpec)).toEqual(['tcp/5432', 'udp/6000-6010']);
  });

  it('keeps an absent from and ports absent (from anywhere, every port)', () => {
    expect(parsePolicy('policy', { ...good, ingress: [{}] }).ingress).toEqual([{}]);
  });

  // Each bad field is named with its path and reason, as every other input of mynet.
  it.each([
    [{ ...good, extra: 1 }, /policy\.extra: unknown field/],
    [{ ...good, name: undefined }, /policy\.name: is required/],
    [{ ...good, name: '-x' }, /policy\.name: "-x" is not a policy name/],
    [{ ...good, network: 'a b' }, /policy\.network: "a b" is not a network name/],
    [{ ...good, select: ['app'] }, /policy\.select: must be an object/],
    [{ ...good, select: { app: 'd b' } }, /policy\.select\.app: label value "d b"/],
    [{ ...good, ingress: {} }, /policy\.ingress: must be a list/],
    [{ ...good, ingress: [{ form: [] }] }, /policy\.ingress\[0\]\.form: unknown field/],
    [{ ...good, ingress: [{ ports: ['tcp/0'] }] }, /policy\.ingress\[0\]\.ports\[0\]: 0 is not a port number/],
    [{ ...good, ingress: [{ ports: ['tcp/65536'] }] }, /policy\.ingress\[0\]\.ports\[0\]: 65536 is not a port number/],
    [{ ...good, ingress: [{ ports: ['icmp/1'] }] }, /policy\.ingress\[0\]\.ports\[0\]: "icmp\/1" is not a port/],
    [{ ...good, ingress: [{ ports: ['tcp/90-80'] }] }, /the range ends before it starts/],
    [{ ...good, ingress: [{ from: [{ app: 'web' }, 'web'] }] }, /policy\.ingress\[0\]\.from\[1\]: must be an object/],
    [{ ...good, ingress: Array.from({ length: POLICY_LIMITS.rules + 1 }, () => ({})) }, /policy\.ingress: has 65 entries, at most 64/],
  ])('refuses %j', (doc, why) => {
    expect(() => parsePolicy('policy', doc)).toThrow(why);
  });

  it('reads a file of one policy or a list, refusing bad JSON, a name given twice and a huge file', () => {
    expect(parsePolicyText('db.json', JSON.stringify(good))).toHaveLength(1);
    expect(parsePolicyText('db.json', JSON.stringify([good, { ...good, name: 'other' }]))).toHaveLength(2);
    expect(() => parsePolicyText('db.json', '{"name":')).toThrow(/db\.json: does not parse as JSON/);
    expect(() => parsePolicyText('db.json', JSON.stringify([good, good]))).toThrow(/policy db-from-web is given twice/);
    expect(() => parsePolicyText('db.json', ' '.repeat(POLICY_LIMITS.bytes + 1))).toThrow(/larger than 65536 bytes/);
  });

  it('reads every YAML scalar as the text the user wrote: an all-digit id prefix, a label that looks like a number', () => {
    const [p] = parsePolicyText(
      'db.yaml',
      'name: db-from-web\nnetwork: 012345678901\nselect: { app: db, version: 1.10 }\ningress:\n  - ports: [ tcp/5432 ]\n',
    );
    expect(p?.network).toBe('012345678901');
    expect(p?.select).toEqual({ app: 'db', version: '1.10' });
  });
});
