/** Terminal output for the `mynet` command: aligned tables; colour only when writing to a TTY. */
import type { NamesView, NetworkView, PolicyView, PortView } from '../admin/views.js';
import { formatPortSpec } from '../policy/document.js';
import type { DoctorResult } from '../plugin.js';
import type { ClusterStatus } from '../multihost/agent.js';

/** The cluster lines of `mynet status`: this node and etcd, then every member. */
export function renderCluster(c: ClusterStatus, st: Style): string[] {
  const etcd = c.etcd === 'up' ? st.green('etcd up') : st.red(`etcd down${c.etcdError ? ` (${c.etcdError})` : ''}`);
  return [
    `cluster: node ${c.node} ${c.address}, ${etcd}`,
    // On a line of its own: the node line is what scripts and the host tier read.
    ...(c.nodeId ? [`  node id ${c.nodeId}`] : []),
    ...(c.refused ? [`  ${st.red(`REFUSED: ${c.refused}`)}`] : []),
    // Finding 9: the plugin runs with an address this host no longer has (or no longer uses).
    ...(c.addressMoved
      ? [
          `  ${st.red(`ADDRESS MOVED: runs with ${c.addressMoved.running}, this host's address is now ${c.addressMoved.now}; ${c.addressMoved.restart}`)}`,
        ]
      : []),
    ...c.networks.map(
      (n) =>
        `  cluster network ${n.cluster} (network ${n.network}): ${n.synced ? 'following etcd' : st.yellow('not following etcd now')}, ${n.remote} remote endpoint(s)${n.definitionDiffers ? st.red(`; etcd's definition differs: ${n.definitionDiffers}`) : ''}`,
    ),
    // Finding 4: this host was forgotten while away and another node holds addresses it uses.
    ...c.networks.flatMap((n) =>
      (n.lost ?? []).map(
        (l) => `  ${st.red(`LOST: ${l.address} of cluster network ${n.cluster} is claimed by node ${l.holder}; not published from here`)}`,
      ),
    ),
    // Issue 25: a policy in etcd that does not check is not enforced by this host.
    ...c.networks.flatMap((n) => (n.refusedPolicies ?? []).map((why) => `  ${st.red(`POLICY REFUSED (not enforced): ${why}`)}`)),
    ...c.members.map(
      (m) =>
        `  member ${m.name} ${m.address} ${m.up === undefined ? 'unknown' : m.up ? st.green('up') : st.red('down')} endpoints ${m.endpoints}`,
    ),
    ...(c.wireguard?.peers ?? []).map(
      (p) =>
        `  wireguard peer ${p.node} ${p.endpoint} tunnel ${p.tunnel}: ${p.programmed ? `handshake ${p.lastHandshake ?? st.yellow('none yet')}, rx ${p.rxBytes} B, tx ${p.txBytes} B` : st.red(`not on ${c.wireguard?.iface ?? 'the interface'}`)}`,
    ),
    '',
  ];
}

export interface Style {
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
}

const wrap =
  (code: string) =>
  (s: string): string =>
    `\u001b[${code}m${s}\u001b[0m`;
export const COLOUR: Style = { bold: wrap('1'), red: wrap('31'), green: wrap('32'), yellow: wrap('33') };
export const PLAIN: Style = { bold: (s) => s, red: (s) => s, green: (s) => s, yellow: (s) => s };

// eslint-disable-next-line no-control-regex
const visible = (s: string): number => s.replace(/\u001b\[\d+m/g, '').length;

export function table(headers: readonly string[], rows: readonly (readonly string[])[], st: Style): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  return [st.bold(line(headers)), ...rows.map(line)].join('\n');
}

export function renderStatus(
  nets: readonly NetworkView[],
  differences: number,
  st: Style,
  names?: NamesView,
  cluster?: ClusterStatus,
): string {
  const namesLine = [
    ...(names === undefined
      ? []
      : names.on
        ? [`names: on, from the Docker API at ${names.socket}`]
        : [st.yellow(`names: off: ${names.why ?? 'no Docker socket'}`)]),
    ...(cluster ? renderCluster(cluster, st) : []),
  ];
  // The names line heads the output and the health line ends it (scripts read the last line).
  if (nets.length === 0) return [...namesLine, 'no mynet networks'].join('\n');
  const out: string[] = [...namesLine];
  for (const n of nets) {
    out.push(
      `${st.bold(n.name ?? '(name unknown)')}  ${n.id.slice(0, 12)}  bridge ${n.bridge}  ${n.subnets.join(' ')}  gateway ${n.gateways.join(' ') || '-'}`,
    );
    const o = n.options;
    const flags = [
      typeof o.cluster === 'string' ? `cluster ${o.cluster}` : '',
      o.internal ? 'internal' : '',
      o.icc === false ? 'icc off' : '',
      o.masquerade === false ? 'no masquerade' : '',
      o.isolate === false ? 'not isolated' : '',
      `mtu ${String(o.mtu)}`,
    ].filter(Boolean);
    out.push(`  options: ${flags.join(', ')}`);
    if (n.endpoints.length) {
      out.push(
        table(
          ['  CONTAINER', 'ADDRESSES', 'MAC', 'HOST VETH', 'PORTS', 'LABELS', 'POLICIES'],
          n.endpoints.map((e) => [
            `  ${e.container ?? e.id.slice(0, 12)}`,
            e.addresses.join(' '),
            e.mac,
            e.hostVeth,
            String(e.ports),
            labelText(e.labels ?? {}) || '-',
            e.policies?.join(',') || '-',
          ]),
          st,
        ),
      );
    } else out.push('  no endpoints');
    out.push('');
  }
  out.push(
    differences === 0
      ? st.green('health: ok, the kernel matches the state')
      : st.yellow(`health: ${differences} difference(s) between state and kernel; run \`mynet doctor\``),
  );
  return out.join('\n');
}

/** "addr:port", with an IPv6 address in brackets so that the port stays readable. */
const hostPort = (ip: string, port: number): string => `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;

export function renderPorts(ports: readonly PortView[], st: Style): string {
  if (ports.length === 0) return 'no published ports';
  return table(
    ['HOST', 'PROTO', 'CONTAINER', 'CONTAINER PORT', 'NETWORK'],
    ports.map((p) => [
      hostPort(p.hostIp, p.hostPort),
      p.proto,
      p.container ?? p.endpoint.slice(0, 12),
      hostPort(p.containerIp, p.containerPort),
      p.network,
    ]),
    st,
  );
}

/** Differences whose repair removes something of ours (only `--fix` does that on its own). */
const removes = (r: DoctorResult): boolean => r.difference.kind === 'orphan' || r.difference.kind === 'leftover';

/**
 * Without --fix: every difference, those that --fix would remove said so (the list an operator
 * reads before removing anything). With --fix: what was repaired, and each removal by name.
 */
export function renderDoctor(results: readonly DoctorResult[], fixing: boolean, st: Style): string {
  if (results.length === 0) return st.green('no differences: the kernel matches the state');
  const state = (r: DoctorResult): string => {
    if (r.repaired) return st.green(removes(r) ? 'removed' : 'repaired');
    if (r.error) return st.red(`repair failed: ${r.error}`);
    if (fixing) return st.yellow('left');
    return st.yellow(removes(r) ? 'found; --fix removes it' : 'found');
  };
  const out = table(
    ['KIND', 'OBJECT', 'DETAIL', 'STATE'],
    results.map((r) => [r.difference.kind, r.difference.object, r.difference.detail, state(r)]),
    st,
  );
  const n = results.filter(removes).length;
  return fixing || n === 0
    ? out
    : `${out}\n\n${n} object(s) of mynet's mark that no record explains; \`mynet doctor --fix\` removes them (and repairs the rest)`;
}

const labelText = (l: Readonly<Record<string, string>>): string =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** `mynet policy ls`: each policy, what it lets in, and the endpoints it selects (protects). */
export function renderPolicies(policies: readonly PolicyView[], st: Style): string {
  if (policies.length === 0) return 'no policies';
  const out: string[] = [];
  for (const p of policies) {
    out.push(
      `${st.bold(p.name)}  network ${p.networkName ?? p.network} (${p.networkId.slice(0, 12)})  select ${labelText(p.select) || '(all)'}`,
    );
    for (const r of p.ingress)
      out.push(
        `  allow from ${r.from?.length ? r.from.map((f) => labelText(f) || '(all)').join(' | ') : 'anywhere'} to ${r.ports?.length ? r.ports.map(formatPortSpec).join(' ') : 'every port'}`,
      );
    if (p.ingress.length === 0) out.push('  allow nothing');
    out.push(
      p.selects.length
        ? `  selects ${p.selects.map((e) => `${e.container ?? e.id.slice(0, 12)} ${e.addresses.join(' ')}`).join(', ')}`
        : st.yellow('  selects no endpoint'),
    );
  }
  return out.join('\n');
}
