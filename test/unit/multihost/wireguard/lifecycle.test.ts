/**
 * The WireGuard interface's life on a host (wireguard/lifecycle.ts): up with the first encrypted
 * network (once, however many ask), its record in etcd; down with the last, the record deleted
 * and the interface removed; a host that can no longer encrypt brings nothing up. Commands are
 * recorded, etcd is in memory (the real interface is the host tier's).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostCommandError } from '../../../../src/errors.js';
import { WireGuardLifecycle } from '../../../../src/multihost/wireguard/lifecycle.js';
import { parseWireGuardSettings } from '../../../../src/multihost/wireguard/settings.js';
import { renderOp } from '../../../../src/plan/step.js';
import { MemoryKv } from '../../../helpers/memory-kv.js';
import { RecordingExecutor } from '../../../helpers/recording-executor.js';
import { silentLog as log } from '../../support.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function lifecycle(
  mode: string,
  wireguardGo = true,
  /** `ip -j link show` of an interface already there (someone's); undefined: none yet; an error: the command fails so. */
  existing?: string | Error,
): { wg: WireGuardLifecycle; kv: MemoryKv; exec: RecordingExecutor; commands: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'mnwg-unit-'));
  dirs.push(dir);
  const kv = new MemoryKv();
  const exec = new RecordingExecutor();
  const commands: string[] = [];
  const wg = new WireGuardLifecycle({
    settings: parseWireGuardSettings({ MYNET_WIREGUARD: mode, MYNET_WIREGUARD_INTERFACE: 'mnwg-w0' }),
    probe: () => ({ kernel: false, wireguardGo, wg: true, tun: true }),
    kv,
    exec,
    command: (argv) => {
      commands.push(argv.join(' '));
      // No interface yet (`ip link show` fails) unless one is given; `wg show` has no peers.
      if (argv[0] !== 'ip') return Promise.resolve('');
      // As the executor's command fails: the kernel's words on stderr.
      if (existing instanceof Error) return Promise.reject(existing);
      return existing === undefined
        ? Promise.reject(new HostCommandError(argv, 1, `Device "${argv.at(-1) ?? ''}" does not exist.`))
        : Promise.resolve(existing);
    },
    log,
    node: { name: 'host-a', address: '198.18.191.1' },
    stateDir: dir,
    tunnelCidr: '100.82.191.1/10',
    underlayMtu: 1500,
  });
  return { wg, kv, exec, commands };
}

const RECORD = '/mynet/v1/wireguard/host-a';

describe('the WireGuard interface comes up with the first encrypted network and goes with the last', () => {
  it('up once however many networks ask; this host record published; down: the record and the interface go', async () => {
    const { wg, kv, exec, commands } = lifecycle('userspace');
    await Promise.all([wg.ensure(), wg.ensure()]);
    expect(commands.filter((c) => c === 'wireguard-go mnwg-w0')).toHaveLength(1);
    expect(commands.some((c) => /^wg set mnwg-w0 private-key \S+wireguard\.key listen-port 51820$/.test(c))).toBe(true);
    const ops = exec.calls.map((c) => renderOp(c.op)).join('\n');
    expect(ops).toContain('ip addr replace 100.82.191.1/10 dev mnwg-w0');
    expect(ops).toContain('ip link set dev mnwg-w0 mtu 1440 up');
    const record = JSON.parse(kv.data.get(RECORD)?.value ?? '{}') as Record<string, unknown>;
    expect(record).toMatchObject({ node: 'host-a', underlay: '198.18.191.1', tunnel: '100.82.191.1', port: 51820 });
    expect(record.publicKey).toBe(wg.current?.publicKey);
    expect(wg.tunnelAddress).toBe('100.82.191.1');
    await wg.release();
    expect(kv.data.has(RECORD)).toBe(false);
    expect(exec.calls.map((c) => renderOp(c.op)).at(-1)).toBe('ip link del mnwg-w0  [absent ok]');
    expect(wg.current).toBeUndefined();
    // Up again with the next encrypted network: the same key (it never left the state directory).
    await wg.ensure();
    expect(JSON.parse(kv.data.get(RECORD)?.value ?? '{}')).toMatchObject({ publicKey: record.publicKey });
    await wg.stop();
  });

  it('rotate-key: a new key in the file and the record, the interface told; refused while the interface is down', async () => {
    const { wg, kv, commands } = lifecycle('userspace');
    await expect(wg.rotate()).rejects.toThrow(/no encrypted cluster network on this host, so no key to rotate/);
    await wg.ensure();
    const before = wg.current?.publicKey;
    const key = wg.current?.keyPath as string;
    const old = readFileSync(key, 'utf8');
    commands.length = 0;
    const { publicKey } = await wg.rotate();
    expect(publicKey).not.toBe(before);
    expect(readFileSync(key, 'utf8')).not.toBe(old);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(JSON.parse(kv.data.get(RECORD)?.value ?? '{}')).toMatchObject({ publicKey });
    expect(commands).toEqual([`wg set mnwg-w0 private-key ${key} listen-port 51820`]);
    await wg.stop();
  });

  it("an interface of that name that is not mynet's (no alias) is refused: no key set on it, no record", async () => {
    const { wg, kv, exec, commands } = lifecycle('userspace', true, '[{"ifname":"mnwg-w0","ifalias":"the operator\'s"}]');
    await wg.ensure();
    expect(wg.current).toBeUndefined();
    expect(commands.filter((c) => !c.startsWith('ip -j link show'))).toEqual([]);
    expect(exec.calls).toEqual([]);
    expect(kv.data.has(RECORD)).toBe(false);
  });

  it('an `ip link show` that times out is not taken for "no interface": no second wireguard-go is started, nothing is published', async () => {
    const stalled = new HostCommandError(['ip', '-j', 'link', 'show', 'dev', 'mnwg-w0'], undefined, '', { timedOut: true });
    const { wg, kv, commands } = lifecycle('userspace', true, stalled);
    await wg.ensure();
    expect(commands.filter((c) => c.startsWith('wireguard-go'))).toEqual([]);
    expect(wg.current).toBeUndefined();
    expect(kv.data.has(RECORD)).toBe(false);
  });

  it('a host that can no longer encrypt (wireguard-go uninstalled since the create) brings nothing up and writes nothing', async () => {
    const { wg, kv, commands } = lifecycle('userspace', false);
    await wg.ensure();
    expect(wg.current).toBeUndefined();
    expect(commands).toEqual([]);
    expect(kv.data.has(RECORD)).toBe(false);
    expect(wg.ability()).toMatchObject({ ok: false, refusal: expect.stringMatching(/needs wireguard-go/) as unknown });
  });
});
