/**
 * The real kernel output and the matching state in test/fixtures/kernel (see its README), and
 * small helpers to take a clean snapshot apart the way things go wrong on a host.
 */
import { readFileSync } from 'node:fs';
import { type Snapshot, State } from '../../../src/driver/state.js';
import { hookStatus } from '../../../src/host/forward-hook.js';
import { type KernelSnapshot, type LinkInfo, type NftTable, parseLinks, parseNftTable } from '../../../src/host/kernel-snapshot.js';

const DIR = new URL('../../fixtures/kernel/', import.meta.url);
export const fixtureText = (name: string): string => readFileSync(new URL(name, DIR), 'utf8');

/** Network and endpoint ids of the fixture (see test/fixtures/kernel/README.md). */
export const DUAL = 'a16ea39fe89d31d8c3533e02872492859400f084beb6e889c9c21424fdc05798';
export const SNAT = 'ae428ef4fcd8be9668f17a4c08c075d7e325ce136dbd0023968cd64994a7e7d6';
export const INTERNAL = '07ce26eaa35efa092cae3cf008e5dca34843b0d238cb8197b15b10a06651e921';
export const E1 = 'e4fefef2476d8a2f834d795ee22393bbf6c58fa4e0e8190792f2fc02cf6e2189';
export const E2 = 'ef7fb3961631adf27345d3a99d371b7754ee2d8f99752778ee3081675eeabcd7';
export const E3 = '7159bf12552a41173c78a193a065c2c1e2efbc30ead7638cf3daf10aeca9c5d4';
export const E4 = 'a2a6cadea4e45b2a4ffc742bb18b71cd10d31be2d896bf6825c51df3fc1a99ca';
export const BR_DUAL = 'mn-a16ea39fe89d';
export const BR_SNAT = 'mn-ae428ef4fcd8';
export const BR_INTERNAL = 'mn-07ce26eaa35e';
/** e1: dual-stack, publishes 8080/tcp and 5353/udp on every address. */
export const VETH_E1 = 'mnhe4fefef2476d';
/** e2: publishes 127.0.0.1:8081. */
export const VETH_E2 = 'mnhef7fb3961631';
/** e3: on the SNAT network (MTU 1400), publishes 0.0.0.0:8443. */
export const VETH_E3 = 'mnh7159bf12552a';
/** e4: on the internal network, publishes nothing. */
export const VETH_E4 = 'mnha2a6cadea4e4';

/** A fresh State loaded from the fixture (each call its own copy). */
export const fixtureState = (): State => State.fromSnapshot(JSON.parse(fixtureText('state.json')) as Snapshot);

/** What the kernel held when the fixture was captured, parsed by the real parsers. */
export const cleanKernel = (): KernelSnapshot => ({
  links: parseLinks(fixtureText('ip-addr-group.json')),
  nft: parseNftTable(fixtureText('nft-table.json')),
  hook: hookStatus(fixtureText('iptables-save.txt'), fixtureText('iptables-save-raw.txt')),
});

// Edits of a snapshot, each returning a new one.
export function withoutLink(k: KernelSnapshot, name: string): KernelSnapshot {
  const links = new Map(k.links);
  links.delete(name);
  return { ...k, links };
}

export function withLink(k: KernelSnapshot, name: string, edit: (l: LinkInfo) => LinkInfo): KernelSnapshot {
  const old = k.links.get(name) ?? { name, mtu: 1500, up: true, addrs: [] };
  return { ...k, links: new Map(k.links).set(name, edit(old)) };
}

export function withNft(k: KernelSnapshot, edit: (t: { chains: Set<string>; elements: Map<string, string[]> }) => void): KernelSnapshot {
  const t = k.nft as NftTable;
  const copy = { ...t, chains: new Set(t.chains), elements: new Map([...t.elements].map(([m, e]) => [m, [...e]])) };
  edit(copy);
  return { ...k, nft: copy };
}

export const dropElement = (k: KernelSnapshot, map: string, element: string): KernelSnapshot =>
  withNft(k, (t) => {
    const els = t.elements.get(map) ?? [];
    if (!els.includes(element)) throw new Error(`${map} has no element ${element}: ${els.join(' | ')}`);
    t.elements.set(
      map,
      els.filter((e) => e !== element),
    );
  });
