/**
 * What the WireGuard host tests read (test/host/wireguard-hosts.test.ts): peer records in etcd,
 * the doctor's WireGuard findings, a stream of pings and the gap in its answers.
 */
import { execa } from 'execa';
import type { TestEtcd } from '../helpers/etcd.js';
import type { TestNetns } from '../helpers/netns.js';
import type { Host } from './cluster-hosts-fixture.js';
import { adminGet } from './plugin-client.js';

export interface PeerRecord {
  readonly node: string;
  readonly publicKey: string;
  readonly underlay: string;
  readonly tunnel: string;
  readonly port: number;
}

export async function peerRecords(etcd: TestEtcd): Promise<Map<string, PeerRecord>> {
  const m = await etcd.get('/mynet/v1/wireguard/');
  return new Map([...m.values()].map((v) => [(v as PeerRecord).node, v as PeerRecord]));
}

export async function peerOf(etcd: TestEtcd, h: Host): Promise<PeerRecord> {
  const r = (await peerRecords(etcd)).get(h.nodeName);
  if (!r) throw new Error(`no peer record of ${h.nodeName}`);
  return r;
}

/** A fresh WireGuard public key (its private half thrown away): a peer no record knows. */
export const strangerKey = async (): Promise<string> =>
  (await execa('wg', ['pubkey'], { input: (await execa('wg', ['genkey'])).stdout })).stdout.trim();

/** The objects of `mynet doctor`'s WireGuard findings on h (the admin socket's /doctor). */
export async function wgFindings(h: Host): Promise<string[]> {
  const r = JSON.parse(await adminGet(h.plugin.adminSocket, '/doctor')) as { results: { difference: { object: string } }[] };
  return r.results.map((x) => x.difference.object).filter((o) => o.startsWith('wireguard '));
}

/** busybox ping from `from` to `ip`, one every `intervalMs`: the sequence numbers answered, as they come. */
export function pingStream(from: TestNetns, ip: string, intervalMs: number): { answered: Set<number>; stop: () => Promise<void> } {
  const answered = new Set<number>();
  const p = execa('ip', ['netns', 'exec', from.name, 'busybox', 'ping', '-i', String(intervalMs / 1000), ip], { reject: false });
  p.stdout?.on('data', (d: Buffer) => {
    for (const m of d.toString().matchAll(/seq=(\d+)/g)) answered.add(Number(m[1]));
  });
  return {
    answered,
    stop: async () => {
      p.kill('SIGINT');
      await p;
    },
  };
}

/** After sequence `after`: pings lost, and the gap from the first lost to the first answered again. */
export function gapOf(answered: ReadonlySet<number>, after: number, intervalMs: number): { gapMs: number; lost: number; sent: number } {
  const last = Math.max(...answered);
  let lost = 0;
  let firstLost: number | undefined;
  let back: number | undefined;
  for (let s = after + 1; s <= last; s++) {
    if (answered.has(s)) {
      if (firstLost !== undefined) back ??= s;
      continue;
    }
    lost++;
    firstLost ??= s;
  }
  return { gapMs: firstLost === undefined ? 0 : ((back ?? last) - firstLost) * intervalMs, lost, sent: last - after };
}

/**
 * A capture of `port` (a host's port of the underlay bridge: the bridge device itself sees only
 * what is sent to it) while `during` runs, in the underlay's namespace; the file's path.
 */
export async function captureUnderlay(underlayNs: string, port: string, pcap: string, during: () => Promise<void>): Promise<string> {
  const capture = execa(
    'ip',
    ['netns', 'exec', underlayNs, 'tcpdump', '--immediate-mode', '-Z', 'root', '-i', port, '-nn', '-U', '-w', pcap],
    {
      reject: false,
    },
  );
  let listening = false;
  capture.stderr?.on('data', (d: Buffer) => (listening ||= d.toString().includes('listening on')));
  try {
    for (let i = 0; i < 500 && !listening; i++) await new Promise((r) => setTimeout(r, 20));
    if (!listening) throw new Error(`tcpdump on ${port} did not start capturing within 10 s`);
    await during();
    // tcpdump hands packets over from the kernel's ring in blocks: let the last ones reach the file.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    capture.kill('SIGINT');
    await capture;
  }
  return pcap;
}

/** The capture's packets that `filter` (tcpdump's expression) takes, one a line. */
export const capturedLines = async (pcap: string, filter: readonly string[]): Promise<string[]> =>
  (await execa('tcpdump', ['-nn', '-r', pcap, ...filter])).stdout.split('\n').filter(Boolean);
