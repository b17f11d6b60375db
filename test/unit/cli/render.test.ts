/**
 * The `mynet` command's terminal output: aligned tables (by visible width, so colour does not
 * shift columns), no escape codes in PLAIN, and the shapes of status, ports and doctor, built
 * from the views of a real run's state.
 */
import { describe, expect, it } from 'vitest';
import { type DockerNames } from '../../../src/admin/docker-names.js';
import { portsView, statusView } from '../../../src/admin/views.js';
import { COLOUR, PLAIN, renderDoctor, renderPorts, renderStatus, table } from '../../../src/cli/render.js';
import { diagnose } from '../../../src/doctor/diagnose.js';
import type { DoctorResult } from '../../../src/plugin.js';
import {
  BR_DUAL,
  BR_SNAT,
  DUAL,
  E1,
  E2,
  E3,
  SNAT,
  VETH_E1,
  VETH_E2,
  VETH_E3,
  cleanKernel,
  fixtureState,
  withLink,
  withoutLink,
} from '../doctor/fixture.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[\d+m/g;
const strip = (s: string): string => s.replace(ANSI, '');
const NAMES: DockerNames = {
  networks: new Map([
    [DUAL, 'front'],
    [SNAT, 'back'],
  ]),
  endpoints: new Map([
    [E1, 'web'],
    [E2, 'admin'],
    [E3, 'api'],
  ]),
};

/** Checks that every row's cells start where the header's titles start. */
function expectAligned(text: string, headers: readonly string[]): void {
  const rows = text.split('\n');
  const head = rows[0] as string;
  const starts = headers.map((h) => head.indexOf(h));
  expect(starts.every((s, i) => s >= 0 && (i === 0 || s > (starts[i - 1] as number)))).toBe(true);
  for (const row of rows.slice(1)) {
    for (const [i, s] of starts.entries()) {
      if (i > 0) expect(row[s - 1], `column ${headers[i]} of "${row}"`).toBe(' ');
      expect(row[s], `column ${headers[i]} of "${row}"`).not.toBe(' ');
    }
  }
}

describe('table', () => {
  it('pads every column but the last to its widest cell, two spaces apart, with no trailing space', () => {
    const t = table(
      ['A', 'LONGER', 'C'],
      [
        ['xxxx', 'y', 'z'],
        ['', 'yyyyyyyy', ''],
      ],
      PLAIN,
    );
    expect(t.split('\n')).toEqual(['A     LONGER    C', 'xxxx  y         z', '      yyyyyyyy']);
  });

  it('aligns by visible width: coloured cells line up with plain ones', () => {
    const rows = [
      [COLOUR.red('ab'), 'c', 'd'],
      ['abcd', COLOUR.green('e'), 'f'],
    ];
    const coloured = table(['H1', 'H2', 'H3'], rows, COLOUR);
    expect(strip(coloured)).toBe(
      table(
        ['H1', 'H2', 'H3'],
        rows.map((r) => r.map(strip)),
        PLAIN,
      ),
    );
    expect(coloured.split('\n')[0]).toBe('\u001b[1mH1    H2  H3\u001b[0m');
  });

  it('PLAIN writes no escape codes; COLOUR wraps and resets', () => {
    expect(PLAIN.bold('x') + PLAIN.red('y') + PLAIN.green('z') + PLAIN.yellow('w')).toBe('xyzw');
    expect(COLOUR.red('y')).toBe('\u001b[31my\u001b[0m');
    expect(COLOUR.green('z')).toBe('\u001b[32mz\u001b[0m');
    expect(COLOUR.yellow('w')).toBe('\u001b[33mw\u001b[0m');
  });
});

describe('renderStatus', () => {
  const nets = statusView(fixtureState(), NAMES);

  it('a heading per network, its options, an aligned table of endpoints, and the health line', () => {
    const out = renderStatus(nets, 0, PLAIN);
    const lines = out.split('\n');
    expect(lines[0]).toBe(`front  a16ea39fe89d  bridge ${BR_DUAL}  10.201.0.0/24 fd00:201::/64  gateway 10.201.0.1 fd00:201::1`);
    expect(lines[1]).toBe('  options: mtu 1500');
    // Labels and the policies selecting each endpoint (issue 25): none in the fixture.
    expect(lines[2]).toMatch(/^ {2}CONTAINER +ADDRESSES +MAC +HOST VETH +PORTS +LABELS +POLICIES$/);
    expect(lines[3]).toMatch(
      new RegExp(`^ {2}web +10\\.201\\.0\\.2/24 fd00:201::10/64 +([0-9a-f]{2}:){5}[0-9a-f]{2} +${VETH_E1} +2 +- +-$`),
    );
    expect(lines[4]).toMatch(new RegExp(`^ {2}admin +10\\.201\\.0\\.3/24 +\\S+ +${VETH_E2} +1 +- +-$`));
    expectAligned(lines.slice(2, 5).join('\n'), ['CONTAINER', 'ADDRESSES', 'MAC', 'HOST VETH', 'PORTS', 'LABELS', 'POLICIES']);
    expect(lines[5]).toBe('');
    expect(out).toContain(`back  ae428ef4fcd8  bridge ${BR_SNAT}  10.201.1.0/24  gateway 10.201.1.1\n  options: mtu 1400\n`);
    expect(out).toMatch(new RegExp(`  api +10\\.201\\.1\\.2/24 +\\S+ +${VETH_E3} +1 +- +-\n`));
    // An unnamed network (dockerd did not say) and its endpoint by short id; internal shows.
    expect(out).toContain(
      '(name unknown)  07ce26eaa35e  bridge mn-07ce26eaa35e  10.201.2.0/24  gateway 10.201.2.1\n  options: internal, mtu 1500\n',
    );
    expect(out).toMatch(/\n {2}a2a6cadea4e4 +10\.201\.2\.2\/24 /);
    expect(lines.at(-1)).toBe('health: ok, the kernel matches the state');
  });

  it('options that differ from the defaults are named', () => {
    const [n] = statusView(fixtureState(), NAMES);
    const odd = { ...(n as (typeof nets)[number]), options: { ...n?.options, icc: false, masquerade: false, isolate: false, mtu: 9000 } };
    expect(renderStatus([odd], 0, PLAIN).split('\n')[1]).toBe('  options: icc off, no masquerade, not isolated, mtu 9000');
  });

  it('a network without endpoints, without a gateway', () => {
    const [n] = nets;
    const bare = { ...(n as (typeof nets)[number]), gateways: [], endpoints: [] };
    const out = renderStatus([bare], 0, PLAIN).split('\n');
    expect(out[0]).toMatch(/ gateway -$/);
    expect(out[2]).toBe('  no endpoints');
  });

  it('differences turn the health line into a pointer to `mynet doctor`', () => {
    expect(renderStatus(nets, 2, PLAIN).split('\n').at(-1)).toBe('health: 2 difference(s) between state and kernel; run `mynet doctor`');
    expect(renderStatus(nets, 2, COLOUR).split('\n').at(-1)).toBe(
      '\u001b[33mhealth: 2 difference(s) between state and kernel; run `mynet doctor`\u001b[0m',
    );
    expect(renderStatus(nets, 0, COLOUR).split('\n').at(-1)).toBe('\u001b[32mhealth: ok, the kernel matches the state\u001b[0m');
  });

  it('COLOUR is PLAIN plus escape codes; PLAIN has none', () => {
    expect(renderStatus(nets, 1, PLAIN)).not.toMatch(ANSI);
    expect(strip(renderStatus(nets, 1, COLOUR))).toBe(renderStatus(nets, 1, PLAIN));
    expect(renderStatus(nets, 1, COLOUR)).toContain('\u001b[1mfront\u001b[0m');
  });

  it('no networks', () => {
    expect(renderStatus([], 0, PLAIN)).toBe('no mynet networks');
  });
});

describe('renderPorts', () => {
  it('an aligned table: host address and port, protocol, container, its address and port, network', () => {
    const out = renderPorts(portsView(fixtureState(), NAMES), PLAIN);
    expect(out.split('\n')).toEqual([
      'HOST            PROTO  CONTAINER  CONTAINER PORT  NETWORK',
      '*:5353          udp    web        10.201.0.2:53   front',
      '*:8080          tcp    web        10.201.0.2:80   front',
      '127.0.0.1:8081  tcp    admin      10.201.0.3:80   front',
      '0.0.0.0:8443    tcp    api        10.201.1.2:443  back',
    ]);
    expectAligned(out, ['HOST', 'PROTO', 'CONTAINER', 'CONTAINER PORT', 'NETWORK']);
  });

  it('IPv6 addresses are bracketed on both sides; without names, short ids stand in', () => {
    const s = fixtureState();
    const e = s.endpoints.get(E1);
    if (!e) throw new Error('fixture');
    s.apply([
      { op: 'endpoint.put', endpoint: { ...e, ports: [{ proto: 'tcp', containerPort: 80, hostIp: '2001:db8::5', hostPort: 9090 }] } },
    ]);
    const row = renderPorts(portsView(s, { networks: new Map(), endpoints: new Map() }), PLAIN)
      .split('\n')
      .find((l) => l.includes('9090'));
    expect(row?.split(/ {2,}/)).toEqual(['[2001:db8::5]:9090', 'tcp', E1.slice(0, 12), '[fd00:201::10]:80', DUAL.slice(0, 12)]);
  });

  it('COLOUR only makes the header bold', () => {
    const ports = portsView(fixtureState(), NAMES);
    const c = renderPorts(ports, COLOUR);
    expect(strip(c)).toBe(renderPorts(ports, PLAIN));
    expect(c.split('\n').slice(1).join('\n')).not.toMatch(ANSI);
  });

  it('none', () => {
    expect(renderPorts([], PLAIN)).toBe('no published ports');
  });
});

describe('renderDoctor', () => {
  const broken = withLink(
    withLink(withoutLink(cleanKernel(), VETH_E3), BR_SNAT, (l) => ({ ...l, up: false })),
    'mn-orphan9',
    (l) => l,
  );
  const found = diagnose(fixtureState(), broken);
  const as = (f: (i: number) => Omit<DoctorResult, 'difference'>): DoctorResult[] =>
    found.map((difference, i) => ({ difference, ...f(i) }));

  it('found (no --fix): kind, object, detail, "found", aligned', () => {
    const out = renderDoctor(
      as(() => ({ repaired: false })),
      false,
      PLAIN,
    );
    expect(out.split('\n')).toEqual([
      'KIND     OBJECT                  DETAIL                                                                      STATE',
      `drift    bridge ${BR_SNAT}  is down                                                                     found`,
      `missing  veth ${VETH_E3}    endpoint 7159bf12552a has no host-side veth                                 found`,
      "orphan   link mn-orphan9         carries mynet's mark but belongs to no network or endpoint the state knows  found; --fix removes it",
      '',
      "1 object(s) of mynet's mark that no record explains; `mynet doctor --fix` removes them (and repairs the rest)",
    ]);
    expectAligned(out.split('\n\n')[0] as string, ['KIND', 'OBJECT', 'DETAIL', 'STATE']);
  });

  it('with --fix: a removal says "removed"', () => {
    const out = renderDoctor(
      as(() => ({ repaired: true })),
      true,
      PLAIN,
    );
    expect(
      out
        .split('\n')
        .slice(1)
        .map((l) => l.split(/ {2,}/).at(-1)),
    ).toEqual(['repaired', 'repaired', 'removed']);
  });

  it("with --fix: repaired, left, or the repair's error", () => {
    const out = renderDoctor(
      as((i) => (i === 0 ? { repaired: true } : i === 1 ? { repaired: false, error: 'create veth: File exists' } : { repaired: false })),
      true,
      PLAIN,
    );
    expect(
      out
        .split('\n')
        .slice(1)
        .map((l) => l.split(/ {2,}/).at(-1)),
    ).toEqual(['repaired', 'repair failed: create veth: File exists', 'left']);
  });

  it('colours the state: green repaired, red failed, yellow found/left; alignment unchanged', () => {
    const rs = as((i) => (i === 0 ? { repaired: true } : i === 1 ? { repaired: false, error: 'boom' } : { repaired: false }));
    const c = renderDoctor(rs, true, COLOUR);
    expect(strip(c)).toBe(renderDoctor(rs, true, PLAIN));
    const states = c
      .split('\n')
      .slice(1)
      .map((l) => l.slice(l.lastIndexOf('  ') + 2));
    expect(states).toEqual(['\u001b[32mrepaired\u001b[0m', '\u001b[31mrepair failed: boom\u001b[0m', '\u001b[33mleft\u001b[0m']);
  });

  it('nothing different', () => {
    expect(renderDoctor([], false, PLAIN)).toBe('no differences: the kernel matches the state');
    expect(renderDoctor([], true, COLOUR)).toBe('\u001b[32mno differences: the kernel matches the state\u001b[0m');
  });
});
