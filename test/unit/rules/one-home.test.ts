/**
 * Issue 21, goal 1: each value rule has one home, src/rules/, and no other file of src/ keeps a
 * copy (four copies of the MTU bounds drifted apart, and a cluster MTU that one accepted, the
 * others refused). The scan looks for each rule's literal form in code (comments are skipped).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../../src');
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );

/** The rule → the literal forms a copy of it would take. */
const COPIES: Record<string, RegExp> = {
  'cluster MTU bounds (rules/mtu.ts)': /\b(65_?485|626|576)\b/,
  'VXLAN overhead (rules/mtu.ts)': /\bVXLAN_OVERHEAD_V4\b|- ?50\b/,
  'VNI range (rules/vni.ts)': /\b16_?777_?21[56]\b|VNI_M(IN|AX) = /,
  'hex id (rules/names.ts)': /\{12,64\}/,
  'DNS label and cluster name (rules/names.ts)': /\{0,61\}/,
  'node name (rules/names.ts)': /\{0,62\}/,
  'MAC form (rules/mac.ts)': /\[0-9a-f\]\{2\}/i,
  'nft table name (rules/nft-names.ts)': /'inet mynet'/,
  'an address without its /len (rules/address.ts)': /split\('\/'\)\[0\]|slice\(0, [a-z.]+\.indexOf\('\/'\)\)/,
  'port number (rules/port.ts)': /[a-z] > 65_?535\)/,
};

/** Code lines of a file, comments left out. */
const code = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.replace(/\/\/.*$/, ''))
    .filter((l) => !/^\s*(\*|\/\*\*?)/.test(l));

const scan = (files: readonly string[], read: (f: string) => string): string[] =>
  files.flatMap((f) =>
    code(read(f)).flatMap((line) =>
      Object.entries(COPIES)
        .filter(([, re]) => re.test(line))
        .map(([rule]) => `${relative(SRC, f)}: ${rule}: ${line.trim().slice(0, 100)}`),
    ),
  );

describe('value rules: one home each', () => {
  it('no file of src/ outside src/rules/ keeps a copy of a rule', () => {
    const files = sources(SRC).filter((f) => !f.startsWith(join(SRC, 'rules')));
    expect(files.length).toBeGreaterThan(50);
    expect(scan(files, (f) => readFileSync(f, 'utf8'))).toEqual([]);
  });

  it('the scan finds the copies main had before (so it can fail)', () => {
    const old: Record<string, string> = {
      'cluster/records.ts': "vni: int(1, 16_777_215), mtu: int(576, 65_485), createdBy: str(NODE_NAME, 'a node name')",
      'multihost/start.ts': '    if (Number.isInteger(mtu) && mtu >= 626) return mtu;',
      'plan/vxlan-firewall.ts': "export const VXLAN_TABLE = 'inet mynet';",
      'driver/ipam.ts': "export const bareAddress = (text: string): string => text.split('/')[0] ?? text;",
      'admin/views.ts': "const bare = (cidr?: string): string | undefined => cidr?.slice(0, cidr.indexOf('/'));",
      'cluster/settings.ts': 'export const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;',
      'doc.ts': ' * a comment about 576 bytes is not code',
    };
    const found = scan(
      Object.keys(old).map((f) => join(SRC, f)),
      (f) => old[relative(SRC, f)] as string,
    );
    expect(found.map((l) => l.split(': ')[0])).toEqual([
      'cluster/records.ts',
      'cluster/records.ts',
      'multihost/start.ts',
      'plan/vxlan-firewall.ts',
      'driver/ipam.ts',
      'admin/views.ts',
      'cluster/settings.ts',
    ]);
  });
});
