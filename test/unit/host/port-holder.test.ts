/**
 * The port holder (src/host/port-holder.ts) with an injected binder: all or nothing per request,
 * a bind refused for EADDRINUSE is a CONFLICT naming the port, EMFILE publishes without holding
 * (and says so), releases are idempotent, and the start-up hold keeps only what is still
 * published. The real binder is exercised against a namespace in test/host/ports.test.ts.
 * Also the parser of `conntrack -L` that the one-pass flush uses.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { PluginError } from '../../../src/errors.js';
import { portsWithFlows } from '../../../src/host/execa-executor.js';
import { type Binder, PortHolder, RESERVED_FDS, openFileLimit } from '../../../src/host/port-holder.js';
import type { HeldSocket } from '../../../src/plan/step.js';
import type { HostPorts } from '../../../src/decision.js';
import { silentLog } from '../support.js';

const tcp = (port: number, address = '0.0.0.0', hostIp = ''): HeldSocket => ({ proto: 'tcp', address, port, hostIp });
const udp = (port: number, address = '0.0.0.0', hostIp = ''): HeldSocket => ({ proto: 'udp', address, port, hostIp });
/** A host where nothing shows in /proc, or `l` listens ("tcp/8080" → addresses). */
const listeners =
  (l: Record<string, string[]> = {}) =>
  (): Promise<HostPorts> =>
    Promise.resolve({ listening: (proto, port) => l[`${proto}/${port}`] ?? [], ephemeral: [32768, 60999] });

/** A binder over a fake kernel: `busy` ports fail with their errno; counts open sockets. */
function fakeKernel(busy: Record<string, string> = {}): { bind: Binder; open: Set<string>; binds: number } {
  const k = { open: new Set<string>(), binds: 0, bind: undefined as unknown as Binder };
  k.bind = (s) => {
    k.binds++;
    const key = `${s.proto} ${s.address} ${s.port}`;
    const code = busy[key] ?? (k.open.has(key) ? 'EADDRINUSE' : undefined);
    if (code) return Promise.reject(Object.assign(new Error(`bind: ${code}`), { code }));
    k.open.add(key);
    return Promise.resolve({
      close: () => {
        k.open.delete(key);
        return Promise.resolve();
      },
    });
  };
  return k;
}

async function refusal(p: Promise<unknown>): Promise<PluginError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof PluginError) return err;
  throw new Error(`expected a PluginError, got ${String(err)}`);
}

function capture(): { log: typeof silentLog; warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, warnings };
}

describe('PortHolder', () => {
  it('holds every socket of a request, and a repeat binds nothing more', async () => {
    const k = fakeKernel();
    const h = new PortHolder(k.bind, listeners());
    await h.hold([tcp(8080), tcp(8080, '::'), udp(53)], silentLog);
    expect([...k.open].sort()).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 53']);
    await h.hold([tcp(8080)], silentLog);
    expect(k.binds).toBe(3);
    expect(h.size).toBe(3);
  });

  it('a port in use: CONFLICT naming the port and that a process uses it; nothing of the request stays held', async () => {
    const k = fakeKernel({ 'udp 0.0.0.0 5353': 'EADDRINUSE' });
    const h = new PortHolder(k.bind, listeners());
    const err = await refusal(h.hold([tcp(8080), udp(5353), tcp(8081)], silentLog));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toBe('host port 5353/udp is in use by a process of the host (bind: EADDRINUSE)');
    expect(k.open.size).toBe(0);
    expect(h.size).toBe(0);
  });

  it('the listener in the way is named from /proc when it shows there (read only after a failed bind)', async () => {
    const k = fakeKernel({ 'tcp 127.0.0.1 8086': 'EADDRINUSE', 'tcp :: 8087': 'EADDRINUSE' });
    let reads = 0;
    const lookup = listeners({ 'tcp/8086': ['0.0.0.0'], 'tcp/8087': ['::'] });
    const h = new PortHolder(k.bind, () => {
      reads++;
      return lookup();
    });
    await h.hold([tcp(8080)], silentLog);
    expect(reads).toBe(0);
    expect((await refusal(h.hold([tcp(8086, '127.0.0.1', '127.0.0.1')], silentLog))).message).toBe(
      'host port 127.0.0.1:8086/tcp is in use by a process listening on 0.0.0.0:8086',
    );
    expect((await refusal(h.hold([tcp(8087, '::')], silentLog))).message).toBe(
      'host port 8087/tcp is in use by a process listening on [::]:8087',
    );
    expect(reads).toBe(2);
  });

  it('an address the host does not have: INVALID_REQUEST naming the field', async () => {
    const h = new PortHolder(fakeKernel({ 'tcp 203.0.113.9 80': 'EADDRNOTAVAIL' }).bind, listeners());
    const err = await refusal(h.hold([tcp(80, '203.0.113.9')], silentLog));
    expect(err.code).toBe('INVALID_REQUEST');
    expect(err.message).toBe(
      'Options.com.docker.network.portmap: 203.0.113.9 is not an address of this host (bind 203.0.113.9:80/tcp: EADDRNOTAVAIL)',
    );
  });

  it('out of file descriptors: the ports are published without their socket, with a warning saying how many', async () => {
    const k = fakeKernel({ 'udp 0.0.0.0 2': 'EMFILE', 'udp 0.0.0.0 3': 'EMFILE' });
    const h = new PortHolder(k.bind, listeners());
    const { log, warnings } = capture();
    await h.hold([udp(1), udp(2), udp(3)], log);
    expect(h.size).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ unheld: 2, first: ['0.0.0.0:2/udp (EMFILE)', '0.0.0.0:3/udp (EMFILE)'] });
  });

  it('holds at most its budget of sockets (descriptors kept for the rest of the plugin); the rest is published unheld, said in a warning', async () => {
    const k = fakeKernel();
    const h = new PortHolder(k.bind, listeners(), 2);
    const { log, warnings } = capture();
    await h.hold([udp(1), udp(2)], log);
    await h.hold([udp(3), udp(4)], log);
    expect(h.size).toBe(2);
    expect(warnings[0]).toMatchObject({ unheld: 2, first: ['0.0.0.0:3/udp (over 2 held sockets)', '0.0.0.0:4/udp (over 2 held sockets)'] });
    await h.release([udp(1)]);
    await h.hold([udp(3)], log);
    expect(h.isHeld(udp(3))).toBe(true);
  });

  it('the budget comes from the soft RLIMIT_NOFILE in /proc', () => {
    expect(openFileLimit()).toBeGreaterThan(RESERVED_FDS);
    expect(openFileLimit('/nonexistent/limits')).toBe(1024);
  });

  it('SCTP is not held (Node has no SCTP sockets)', async () => {
    const k = fakeKernel();
    const h = new PortHolder(k.bind, listeners());
    await h.hold([{ proto: 'sctp', address: '0.0.0.0', port: 9, hostIp: '' }], silentLog);
    expect(k.binds).toBe(0);
  });

  it('release closes what is held and skips the rest; the port can be held again', async () => {
    const k = fakeKernel();
    const h = new PortHolder(k.bind, listeners());
    await h.hold([tcp(8080), udp(8080)], silentLog);
    await h.release([tcp(8080), tcp(9999)]);
    expect([...k.open]).toEqual(['udp 0.0.0.0 8080']);
    await h.release([tcp(8080)]);
    await h.hold([tcp(8080)], silentLog);
    expect(h.isHeld(tcp(8080))).toBe(true);
  });

  it('holdAll at start: holds what it can, logs the ports a process took, and drops what was unpublished meanwhile', async () => {
    const k = fakeKernel({ 'tcp 0.0.0.0 8081': 'EADDRINUSE' });
    const h = new PortHolder(k.bind, listeners());
    const { log, warnings } = capture();
    let published = [tcp(8080), tcp(8081), udp(53)];
    const holding = h.holdAll(() => published, log);
    published = [tcp(8080), tcp(8081)]; // udp 53 is unpublished while the binds are under way
    await holding;
    expect([...k.open]).toEqual(['tcp 0.0.0.0 8080']);
    expect(h.isHeld(udp(53))).toBe(false);
    expect(warnings.map((w) => w.port)).toEqual(['0.0.0.0:8081/tcp']);
  });
});

describe('portsWithFlows (conntrack -L, parsed once for many ports)', () => {
  it("takes each flow's original destination port, and only the wanted ones", () => {
    const listing = [
      'udp      17 29 src=203.0.113.2 dst=203.0.113.1 sport=40000 dport=10007 [UNREPLIED] src=203.0.113.1 dst=203.0.113.2 sport=10007 dport=40000 mark=0 use=1',
      'udp      17 120 src=10.0.0.5 dst=10.0.0.1 sport=10009 dport=53 src=10.0.0.1 dst=10.0.0.5 sport=53 dport=10009 [ASSURED] mark=0 use=1',
      'udp      17 10 src=fd00::2 dst=fd00::1 sport=1 dport=10002 [UNREPLIED] src=fd00::1 dst=fd00::2 sport=10002 dport=1 mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
      '',
    ].join('\n');
    // 10009 is only a source port (of a flow to port 53): not a flow to the published port.
    expect(portsWithFlows(listing, new Set([10002, 10007, 10009, 10010]))).toEqual([10002, 10007]);
    expect(portsWithFlows('', new Set([1]))).toEqual([]);
  });
});
