/**
 * Real traffic for the NAT / isolation / published-port tests. The topology of a test:
 *
 *   container ns ──veth── [host ns: the Plugin, mynet bridges] ──mnt-up/mnt-out── outside ns
 *
 * The outside namespace has addresses in 203.0.113.0/24 and 198.51.100.0/24 (both on the one
 * veth to the host namespace) and no route anywhere else, so an answer to a container reaches
 * it only when the host namespace rewrote the container's source address (NAT).
 *
 * Servers are tiny node programs inside a namespace (`ip netns exec`), killed by their pid after
 * each test (`stopServers`); clients are one node process per attempt with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { HostPorts, Proto } from '../../src/decision.js';
import { HostCommandError } from '../../src/errors.js';
import type { Plugin } from '../../src/plugin.js';
import { afterAll, afterEach } from 'vitest';
import { type TestNetns, createNetns, destroyCreated } from '../helpers/netns.js';
import { type CreatedNetwork, buildPlugin, createEndpoint, hostLikeFilter, ipOf, plugContainer } from './plugin-fixture.js';

export const HOST_ADDR = '203.0.113.1';
export const OUTSIDE_ADDR = '203.0.113.2';
/** A second address of the host namespace on the same link (SNAT target, "other address"). */
export const HOST_ADDR2 = '198.51.100.1';
export const OUTSIDE_ADDR2 = '198.51.100.2';

/** The outside host: a namespace joined to `host` by a veth, without a route to any container subnet. */
export async function outsideHost(host: TestNetns): Promise<TestNetns> {
  const outside = await createNetns();
  await host.run(['ip', 'link', 'add', 'name', 'mnt-up', 'type', 'veth', 'peer', 'name', 'mnt-out', 'netns', outside.name]);
  // No duplicate address detection: the link-local address is final at once, so a dump taken
  // right after this does not catch it "tentative".
  await host.run(['sysctl', '-q', '-w', 'net.ipv6.conf.mnt-up.accept_dad=0']);
  await outside.run(['sysctl', '-q', '-w', 'net.ipv6.conf.mnt-out.accept_dad=0']);
  for (const a of [`${HOST_ADDR}/24`, `${HOST_ADDR2}/24`]) await host.run(['ip', 'addr', 'add', a, 'dev', 'mnt-up']);
  await host.run(['ip', 'link', 'set', 'dev', 'mnt-up', 'up']);
  for (const a of [`${OUTSIDE_ADDR}/24`, `${OUTSIDE_ADDR2}/24`]) await outside.run(['ip', 'addr', 'add', a, 'dev', 'mnt-out']);
  await outside.run(['ip', 'link', 'set', 'dev', 'mnt-out', 'up']);
  return outside;
}

export interface World {
  /** Where the Plugin runs. */
  readonly host: TestNetns;
  readonly outside: TestNetns;
  readonly plugin: Plugin;
}

/**
 * A host namespace with its outside host and a Plugin. The filter tables are plain (FORWARD
 * policy ACCEPT) unless `firewall` sets them up otherwise, so a drop seen is mynet's own.
 */
export async function world(
  o: {
    firewall?: (ns: TestNetns) => Promise<void>;
    /** What the Plugin reads of the host's ports, given the host namespace (default: nothing in use). */
    hostPorts?: (host: TestNetns) => (protos: readonly Proto[]) => Promise<HostPorts>;
  } = {},
): Promise<World> {
  const host = await createNetns();
  await (o.firewall ?? hostLikeFilter)(host);
  const outside = await outsideHost(host);
  return { host, outside, plugin: buildPlugin(host, o.hostPorts ? { hostPorts: o.hostPorts(host) } : {}) };
}

/** Awaits every check together and returns their results by name, so one expect shows them all. */
export const all = async <T extends Record<string, Promise<unknown>>>(checks: T): Promise<{ [K in keyof T]: Awaited<T[K]> }> =>
  Object.fromEntries(await Promise.all(Object.entries(checks).map(async ([k, p]) => [k, await p]))) as { [K in keyof T]: Awaited<T[K]> };

export interface Container {
  readonly ep: Awaited<ReturnType<typeof createEndpoint>>;
  readonly box: TestNetns;
  /** Its IPv4 address, without the prefix length. */
  readonly ip: string;
}

/** CreateEndpoint + Join, and a namespace configured as dockerd configures a container. */
export async function container(w: World, net: CreatedNetwork, o: { addressV6?: string } = {}): Promise<Container> {
  const ep = await createEndpoint(w.plugin, net, o);
  const box = await createNetns();
  await plugContainer(w.host, box, ep);
  return { ep, box, ip: ipOf(ep.address) };
}

/**
 * A server: every TCP port answers "<label> from <peer address>\n" and closes; every UDP port
 * answers each datagram with "<label> from <peer address>" and logs "udp <peer>:<port> <data>"
 * on stdout (read it with `received`).
 */
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [label, tcp, udp, bind] = process.argv.slice(1);
const peer = (a) => String(a).replace(/^::ffff:/, '');
const list = (s) => (s ? s.split(',').map(Number) : []);
let pending = list(tcp).length + list(udp).length;
const ready = () => { if (--pending === 0) console.log('ready'); };
for (const p of list(tcp)) {
  net.createServer((s) => { s.on('error', () => {}); s.end(label + ' from ' + peer(s.remoteAddress) + '\\n'); })
    .on('error', (e) => { console.log('error ' + e.message); process.exit(1); })
    .listen(p, bind || '0.0.0.0', ready);
}
for (const p of list(udp)) {
  const u = dgram.createSocket('udp4');
  u.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
  u.on('message', (m, r) => { console.log('udp ' + r.address + ':' + r.port + ' ' + m); u.send(label + ' from ' + r.address, r.port, r.address); });
  u.bind(p, bind || '0.0.0.0', ready);
}
`;

/** A background process inside a namespace: its pid, and what it printed so far. */
export interface Background {
  readonly proc: ChildProcess;
  /** Lines printed on stdout so far. */
  readonly lines: string[];
  stop(): void;
}

const running = new Set<Background>();

/** Starts `node -e script ...args` in `ns` and waits until it prints `readyLine` (when given). */
export async function background(ns: TestNetns, script: string, args: readonly string[], readyLine?: string): Promise<Background> {
  const proc = spawn('ip', ['netns', 'exec', ns.name, 'node', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const bg: Background = {
    proc,
    lines,
    stop: () => {
      running.delete(bg);
      // `ip netns exec` execs node in place: this pid is the server itself.
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
  running.add(bg);
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${ns.name}: no "${readyLine}" within 10 s; stderr: ${stderr}`)), 10_000);
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (readyLine && parts.includes(readyLine)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${ns.name}: exited with ${code} before "${readyLine}": ${lines.join('\n')} ${stderr}`));
    });
    if (!readyLine) {
      clearTimeout(timer);
      resolve();
    }
  });
  return bg;
}

/** Kills every background process started by this file. For afterEach, before the namespaces go. */
/**
 * Registers this file's cleanup: servers first (by their pids), then the namespaces they ran in,
 * after each test and once more after the file (a failed test may have left both).
 */
export function cleanUpServersAndNamespaces(): void {
  for (const hook of [afterEach, afterAll]) {
    hook(async () => {
      stopServers();
      await destroyCreated();
    });
  }
}

export function stopServers(): void {
  for (const bg of [...running]) bg.stop();
}

export interface ServeOptions {
  readonly tcp?: readonly number[];
  readonly udp?: readonly number[];
  /** Address to bind (default 0.0.0.0). */
  readonly bind?: string;
}

export async function serve(ns: TestNetns, label: string, o: ServeOptions): Promise<Background> {
  return background(ns, SERVER, [label, (o.tcp ?? []).join(','), (o.udp ?? []).join(','), o.bind ?? ''], 'ready');
}

/** The UDP datagrams a server logged, as "peer:port data". */
export const received = (bg: Background): string[] => bg.lines.filter((l) => l.startsWith('udp ')).map((l) => l.slice(4));

const TCP_CLIENT = `
const [host, port, ms] = process.argv.slice(1);
const s = require('net').connect(Number(port), host);
let d = '';
s.setEncoding('utf8');
s.on('data', (x) => (d += x));
s.on('end', () => { process.stdout.write(d); process.exit(0); });
s.on('error', (e) => { process.stderr.write(e.code || e.message); process.exit(2); });
setTimeout(() => { process.stderr.write('timeout'); process.exit(3); }, Number(ms));
`;

const UDP_CLIENT = `
const [host, port, ms] = process.argv.slice(1);
const u = require('dgram').createSocket('udp4');
u.on('message', (m) => { process.stdout.write(String(m)); process.exit(0); });
u.on('error', (e) => { process.stderr.write(e.code || e.message); process.exit(2); });
const send = () => u.send('hello', Number(port), host);
send();
setInterval(send, 250);
setTimeout(() => { process.stderr.write('timeout'); process.exit(3); }, Number(ms));
`;

async function client(from: TestNetns, script: string, addr: string, port: number, ms: number): Promise<string | undefined> {
  try {
    return (await from.run(['node', '-e', script, addr, String(port), String(ms)])).trim();
  } catch (err) {
    if (err instanceof HostCommandError) return undefined;
    throw err;
  }
}

/**
 * What a TCP connection from `from` to addr:port reads (the server's "<label> from <peer>"), or
 * undefined when it is refused, unreachable or silent. An answer is retried once (a fresh
 * bridge port can lose the first SYN); silence is waited for once, `ms` long.
 */
export async function tcpAsk(
  from: TestNetns,
  addr: string,
  port: number,
  expectAnswer = true,
  ms = expectAnswer ? 3000 : 1200,
): Promise<string | undefined> {
  const tries = expectAnswer ? 2 : 1;
  for (let i = 0; i < tries; i++) {
    const r = await client(from, TCP_CLIENT, addr, port, ms);
    if (r !== undefined) return r;
  }
  return undefined;
}

/** Sends a datagram every 250 ms until one is answered or `ms` pass; the answer or undefined. */
export async function udpAsk(
  from: TestNetns,
  addr: string,
  port: number,
  expectAnswer = true,
  ms = expectAnswer ? 3000 : 1200,
): Promise<string | undefined> {
  return client(from, UDP_CLIENT, addr, port, ms);
}

/** A datagram to addr:port every `everyMs` from one fixed source port, until stopped. */
export function udpFlow(from: TestNetns, addr: string, port: number, everyMs = 100): Promise<Background> {
  const script = `
const [host, port, every] = process.argv.slice(1);
const u = require('dgram').createSocket('udp4');
let n = 0;
u.on('error', () => {});
u.bind(0, () => { console.log('ready'); setInterval(() => u.send('seq ' + n++, Number(port), host), Number(every)); });
`;
  return background(from, script, [addr, String(port), String(everyMs)], 'ready');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A `com.docker.network.portmap` entry as dockerd sends it. */
export interface PortMapEntry {
  readonly Proto: 6 | 17 | 132;
  readonly IP: string;
  readonly Port: number;
  readonly HostIP: string;
  readonly HostPort: number;
  readonly HostPortEnd: number;
}

export const TCP = 6;
export const UDP = 17;
export const SCTP = 132;

/** One binding; HostPortEnd defaults to HostPort, as `-p 8080:80` sends it. */
export const binding = (
  proto: 6 | 17 | 132,
  port: number,
  hostPort: number,
  o: { hostIp?: string; hostPortEnd?: number } = {},
): PortMapEntry => ({
  Proto: proto,
  IP: '',
  Port: port,
  HostIP: o.hostIp ?? '',
  HostPort: hostPort,
  HostPortEnd: o.hostPortEnd ?? hostPort,
});

/**
 * Makes `ns` send 127.0.0.1 traffic out of `dev` to `via` and accept loopback-addressed
 * answers there: what a neighbour does to reach a host's loopback through route_localnet.
 */
export async function routeLoopbackVia(ns: TestNetns, dev: string, via: string): Promise<void> {
  await ns.run(['sysctl', '-q', '-w', `net.ipv4.conf.${dev}.route_localnet=1`]);
  await ns.run(['ip', 'addr', 'flush', 'dev', 'lo']);
  await ns.run(['ip', 'route', 'add', '127.0.0.1/32', 'via', via, 'dev', dev]);
}

/** IPv6 on the link to the outside host (ULA, inside the test's namespaces only). */
export const HOST_ADDR6 = 'fd00:203::1';
export const OUTSIDE_ADDR6 = 'fd00:203::2';

/** Gives the host/outside link IPv6 addresses; the outside still has no route to any container subnet. */
export async function outsideV6(w: World): Promise<void> {
  await w.host.run(['ip', 'addr', 'add', `${HOST_ADDR6}/64`, 'dev', 'mnt-up', 'nodad']);
  await w.outside.run(['ip', 'addr', 'add', `${OUTSIDE_ADDR6}/64`, 'dev', 'mnt-out', 'nodad']);
}

/** A container's IPv6 default route through its network's gateway (dockerd sets it from Join). */
export async function v6Default(c: Container, gateway6: string | undefined): Promise<void> {
  if (!gateway6) throw new Error('the network has no IPv6 gateway');
  await c.box.run(['ip', '-6', 'route', 'add', 'default', 'via', gateway6.slice(0, gateway6.indexOf('/'))]);
}
