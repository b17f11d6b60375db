/**
 * Holds published host ports with bound sockets while they are published, as Docker's bridge
 * does, so that a process of the host that starts listening on a published port later gets
 * EADDRINUSE instead of being silently shadowed by the DNAT rules (local clients would reach the
 * container, the process would see nothing). And a bind that fails at publish time is the
 * conflict check for exact ports, in microseconds, where reading /proc/net/tcp* costs ~6 ms.
 *
 * What the bridge binds (moby, libnetwork/drivers/bridge/port_mapping_linux.go, bindTCPOrUDP,
 * bindSCTP, listenBoundPorts, releasePortBindings; in moby v2 the same in
 * daemon/libnetwork/portallocator/osallocator_linux.go):
 *  - one socket per host address and family: an unspecified HostIP becomes 0.0.0.0 and [::],
 *    the IPv6 one with IPV6_V6ONLY=1 (so the two do not collide with each other);
 *  - SO_REUSEADDR, then bind(); TCP (and SCTP) sockets then listen() (backlog 0 without the
 *    userland proxy), because with SO_REUSEADDR a bound-only socket would not stop another
 *    socket from binding the same port on a specific address; UDP sockets are only bound;
 *  - closed when the ports are released (Revoke/Leave, releasePortBindings).
 * Here: TCP is a listening net.Server (libuv sets SO_REUSEADDR on it), whose rare connections
 * (only [::1] is not DNATed) are reset at once; UDP a bound dgram socket without SO_REUSEADDR
 * (stricter: a later bind of the port on one address fails too), whose datagrams are dropped.
 * SCTP: Node has no SCTP sockets, so SCTP ports are not held (nor checked: /proc/net/sctp is
 * not read either); the README says so.
 *
 * Each held socket costs a file descriptor and ~4 KB. Node raises its soft RLIMIT_NOFILE to the
 * hard limit at start; the holder keeps RESERVED_FDS of them for everything else (an `nft` or
 * `conntrack` process that cannot be spawned would fail the next request, or worse). Past that
 * budget (or on EMFILE), a port is published without its socket and a warning says how many,
 * rather than refusing a `-P` that the firewall alone serves.
 *
 * The holder binds in the namespace of the process it runs in: the plugin's. Tests that run the
 * plugin's code outside the namespace they test give the executor no holder (nothing is held).
 */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { PluginError, invalid } from '../errors.js';
import type { HeldSocket } from '../plan/step.js';
import type { HostPorts, Proto } from '../decision.js';
import { readHostPorts } from './listeners.js';

/** A bound socket, closed by `close`. */
export interface Held {
  close(): Promise<void>;
}

/** The host's listeners of some protocols (host/listeners.ts), to name the one in the way. */
export type ListenerLookup = (protos: readonly Proto[]) => Promise<HostPorts>;

/** Binds one socket (rejects with the errno error of bind/listen). */
export type Binder = (s: HeldSocket) => Promise<Held>;

const keyOf = (s: HeldSocket): string => `${s.proto} ${s.address} ${s.port}`;
const where = (s: HeldSocket): string => `${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}/${s.proto}`;

/** The real binder: a listening TCP server or a bound UDP socket in this process's namespace. */
export const bindSocket: Binder = (s) =>
  new Promise<Held>((resolve, reject) => {
    const v6 = s.address.includes(':');
    if (s.proto === 'tcp') {
      const server = createServer((c) => c.resetAndDestroy());
      server.once('error', reject);
      server.listen({ host: s.address, port: s.port, ipv6Only: v6, backlog: 1 }, () => {
        server.off('error', reject);
        server.on('error', () => undefined); // a listening socket has no later errors to act on
        resolve({ close: () => new Promise<void>((r) => server.close(() => r())) });
      });
      return;
    }
    const sock = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
    sock.once('error', reject);
    sock.bind({ address: s.address, port: s.port, exclusive: true }, () => {
      sock.off('error', reject);
      sock.on('error', () => undefined); // e.g. ICMP errors of datagrams nobody reads
      resolve({ close: () => new Promise<void>((r) => sock.close(() => r())) });
    });
  });

/** The binding as the decision names it (driver/ports.ts): "8080/tcp", "127.0.0.1:8080/tcp". */
const binding = (s: HeldSocket): string =>
  `${s.hostIp === '' ? '' : s.hostIp.includes(':') ? `[${s.hostIp}]:` : `${s.hostIp}:`}${s.port}/${s.proto}`;

/**
 * What a failed bind means for the request. EADDRINUSE: the listener is looked up in /proc
 * (only then, ~6 ms) to name it, as the check before binding did.
 */
async function refusal(s: HeldSocket, err: NodeJS.ErrnoException, listeners: ListenerLookup): Promise<PluginError> {
  switch (err.code) {
    case 'EADDRINUSE': {
      const l = (
        await listeners([s.proto]).then(
          (h) => h.listening(s.proto, s.port),
          () => [],
        )
      )[0];
      const who =
        l === undefined ? 'a process of the host (bind: EADDRINUSE)' : `a process listening on ${l.includes(':') ? `[${l}]` : l}:${s.port}`;
      return new PluginError('CONFLICT', `host port ${binding(s)} is in use by ${who}`, { cause: err });
    }
    case 'EADDRNOTAVAIL':
      // Docker's bridge refuses too ("cannot assign requested address").
      return invalid('Options.com.docker.network.portmap', `${s.address} is not an address of this host (bind ${where(s)}: EADDRNOTAVAIL)`);
    default:
      return new PluginError('INTERNAL', `cannot hold host port ${where(s)}: ${err.code ?? err.message}`, { cause: err });
  }
}

/** Descriptors left to the rest of the plugin (clients, state files, host processes' pipes). */
export const RESERVED_FDS = 1024;

/** The soft RLIMIT_NOFILE of this process (Node has no getrlimit; /proc says it). */
export function openFileLimit(limits = '/proc/self/limits'): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    return m?.[1] === undefined ? 1024 : m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return 1024; // no /proc: the usual default soft limit
  }
}

/** Errors that mean "this host cannot hold it", not "someone else has it". */
const CANNOT_HOLD = new Set(['EMFILE', 'ENFILE', 'EAFNOSUPPORT', 'ESOCKTNOSUPPORT', 'EPROTONOSUPPORT']);

export class PortHolder {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly bind: Binder = bindSocket,
    private readonly listeners: ListenerLookup = readHostPorts,
    /** At most this many sockets held at once (default: the descriptor limit less RESERVED_FDS). */
    private readonly maxHeld = Math.max(0, openFileLimit() - RESERVED_FDS),
  ) {}

  /** Sockets held now. */
  get size(): number {
    return this.held.size;
  }

  isHeld(s: HeldSocket): boolean {
    return this.held.has(keyOf(s));
  }

  /** Binds what is not held yet; sorts the failures into refusals and "cannot hold here". */
  private async bindAll(
    sockets: readonly HeldSocket[],
  ): Promise<{ bound: [HeldSocket, Held][]; refused: [HeldSocket, NodeJS.ErrnoException][]; unheld: string[] }> {
    const keys = new Set<string>();
    const wanted = sockets.filter(
      (s) => s.proto !== 'sctp' && !this.held.has(keyOf(s)) && !keys.has(keyOf(s)) && Boolean(keys.add(keyOf(s))),
    );
    const room = Math.max(0, this.maxHeld - this.held.size);
    const todo = wanted.slice(0, room);
    const results = await Promise.allSettled(todo.map((s) => this.bind(s)));
    const out: Awaited<ReturnType<PortHolder['bindAll']>> = {
      bound: [],
      refused: [],
      unheld: wanted.slice(room).map((s) => `${where(s)} (over ${this.maxHeld} held sockets)`),
    };
    results.forEach((r, i) => {
      const s = todo[i] as HeldSocket;
      if (r.status === 'fulfilled') out.bound.push([s, r.value]);
      else if (CANNOT_HOLD.has((r.reason as NodeJS.ErrnoException).code ?? ''))
        out.unheld.push(`${where(s)} (${(r.reason as NodeJS.ErrnoException).code})`);
      else out.refused.push([s, r.reason as NodeJS.ErrnoException]);
    });
    return out;
  }

  private keep(bound: readonly [HeldSocket, Held][], unheld: readonly string[], log: Logger): void {
    for (const [s, h] of bound) this.held.set(keyOf(s), h);
    if (unheld.length) {
      log.warn(
        { unheld: unheld.length, first: unheld.slice(0, 5), held: this.held.size },
        'published host ports without a held socket: a process of the host could bind them (raise LimitNOFILE)',
      );
    }
  }

  /**
   * Binds every socket, or none: on a conflict the ones bound by this call are closed and the
   * error names the port. Sockets already held count as done (a repeat, or restore).
   */
  async hold(sockets: readonly HeldSocket[], log: Logger): Promise<void> {
    const r = await this.bindAll(sockets);
    const first = r.refused[0];
    if (first) {
      await Promise.all(r.bound.map(([, h]) => h.close()));
      throw await refusal(first[0], first[1], this.listeners);
    }
    this.keep(r.bound, r.unheld, log);
  }

  /** Closes the sockets; those not held are skipped. */
  async release(sockets: readonly HeldSocket[]): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const s of sockets) {
      const k = keyOf(s);
      const h = this.held.get(k);
      if (!h) continue;
      this.held.delete(k);
      closing.push(h.close());
    }
    await Promise.all(closing);
  }

  /**
   * At start: holds the ports published in the stored state (`published()`), each on its own,
   * since they are published already (their map elements are restored). A port a process of the
   * host took while the plugin was down cannot be held: said in the log; it stays published.
   * Requests are served meanwhile, so what was unpublished while binding is closed again.
   */
  async holdAll(published: () => readonly HeldSocket[], log: Logger): Promise<void> {
    const r = await this.bindAll(published());
    const still = new Set(published().map(keyOf));
    const [keep, drop] = [r.bound.filter(([s]) => still.has(keyOf(s))), r.bound.filter(([s]) => !still.has(keyOf(s)))];
    this.keep(keep, r.unheld, log);
    await Promise.all(drop.map(([, h]) => h.close()));
    for (const [s, err] of r.refused)
      log.warn(
        { port: where(s), err: (await refusal(s, err, this.listeners)).message },
        'a stored published port cannot be held: a process of the host took it while mynet was down',
      );
    log.info({ held: this.held.size, notHeld: r.refused.length + r.unheld.length }, 'published host ports held');
  }

  /** Closes everything (shutdown, tests). */
  async close(): Promise<void> {
    const all = [...this.held.values()];
    this.held.clear();
    await Promise.all(all.map((h) => h.close()));
  }
}
