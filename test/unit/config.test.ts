/** Settings from the environment: defaults, and a clear error naming the variable. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ExecaExecutor } from '../../src/host/execa-executor.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.socket).toBe('/run/docker/plugins/mynet.sock');
    expect(c.stateDir).toBe('/var/lib/mynet');
    expect(c.procSysNet).toBe('/proc/sys/net');
    expect(c.dnsListen).toEqual(loadConfig({ MYNET_DNS_LISTEN: '127.0.0.153:53' }).dnsListen);
    expect(loadConfig({ MYNET_DNS_LISTEN: '' }).dnsListen).toBeUndefined();
  });

  it('names the variable and the reason for a bad value', () => {
    expect(() => loadConfig({ MYNET_LOG_LEVEL: 'loud' })).toThrow(/MYNET_LOG_LEVEL.*"loud" is not one of/);
    expect(() => loadConfig({ MYNET_COMMAND_TIMEOUT: '-1' })).toThrow(/MYNET_COMMAND_TIMEOUT.*not a positive whole number/);
    expect(() => loadConfig({ MYNET_DNS_ZONE: 'a b' })).toThrow(/MYNET_DNS_ZONE/);
  });

  it('MYNET_PROC_SYS_NET: net/ sysctls are written under it (the managed plugin mounts the host one there)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'mnt-sysctl-'));
    dirs.push(root);
    mkdirSync(join(root, 'ipv4/conf/mn-x.1'), { recursive: true });
    writeFileSync(join(root, 'ipv4/conf/mn-x.1/route_localnet'), '0\n');
    const c = loadConfig({ MYNET_PROC_SYS_NET: `${root}/` });
    expect(c.procSysNet).toBe(root);
    const exec = new ExecaExecutor({ procSysNet: c.procSysNet });
    await exec.run({ kind: 'sysctl', key: 'net/ipv4/conf/mn-x.1/route_localnet', value: '1' }, pino({ level: 'silent' }));
    expect(readFileSync(join(root, 'ipv4/conf/mn-x.1/route_localnet'), 'utf8')).toBe('1');
    expect(exec.spawns).toBe(0);
    const err = await exec.run({ kind: 'sysctl', key: 'net/ipv4/nosuch', value: '1' }, pino({ level: 'silent' })).catch((e: unknown) => e);
    expect(String(err)).toMatch(/sysctl net\/ipv4\/nosuch=1: .*ENOENT/);
  });
});
