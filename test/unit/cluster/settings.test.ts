import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsMaterial, checkTls, parseClusterSettings, readTls } from '../../../src/cluster/settings.js';

const parse = (env: Record<string, string>, host = 'host-a'): ReturnType<typeof parseClusterSettings> => parseClusterSettings(env, host);

describe('cluster settings', () => {
  it('no endpoints: no cluster at all', () => {
    expect(parse({})).toBeUndefined();
    expect(parse({ MYNET_ETCD_ENDPOINTS: '  ' })).toBeUndefined();
  });

  it('parses endpoints, defaults the node name to the hostname, keeps the node address', () => {
    expect(parse({ MYNET_ETCD_ENDPOINTS: 'http://10.0.0.5:2379, http://10.0.0.6:2379/,http://10.0.0.5:2379' })).toEqual({
      endpoints: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379'],
      tls: false,
      nodeName: 'host-a',
      presenceTtlS: 10,
    });
    expect(
      parse({ MYNET_ETCD_ENDPOINTS: 'https://e1:2379', MYNET_NODE_NAME: 'b', MYNET_NODE_ADDRESS: '198.18.0.2', MYNET_ETCD_CA: '/ca.pem' }),
    ).toEqual({
      endpoints: ['https://e1:2379'],
      tls: true,
      caFile: '/ca.pem',
      nodeName: 'b',
      nodeAddress: '198.18.0.2',
      presenceTtlS: 10,
    });
    expect(parse({ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_CLUSTER_PRESENCE_TTL: '3' })?.presenceTtlS).toBe(3);
  });

  it.each([
    [
      { MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_CLUSTER_PRESENCE_TTL: '1' },
      /MYNET_CLUSTER_PRESENCE_TTL: "1" is not a whole number of seconds from 2 to 300/,
    ],
    [{ MYNET_ETCD_ENDPOINTS: 'e1:2379' }, /MYNET_ETCD_ENDPOINTS: "e1:2379" must start with http:\/\/ or https:\/\//],
    [{ MYNET_ETCD_ENDPOINTS: 'not a url' }, /MYNET_ETCD_ENDPOINTS: "not a url" is not a URL/],
    [{ MYNET_ETCD_ENDPOINTS: 'ftp://e1:2379' }, /must start with http/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379,https://e2:2379' }, /mixes http:\/\/ and https:\/\//],
    [{ MYNET_ETCD_ENDPOINTS: 'https://root:s3cret@e1:2379' }, /must not carry a user or password/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379/v3/kv' }, /without a path/],
    [{ MYNET_ETCD_ENDPOINTS: ',,' }, /lists no endpoint/],
    [{ MYNET_ETCD_CA: '/ca.pem' }, /MYNET_ETCD_CA: is set but MYNET_ETCD_ENDPOINTS is not/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_ETCD_CA: '/ca.pem' }, /TLS files need https/],
    [{ MYNET_ETCD_ENDPOINTS: 'https://e1:2379', MYNET_ETCD_CERT: '/c.pem' }, /MYNET_ETCD_KEY: a client certificate needs both/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_NAME: 'a/b' }, /MYNET_NODE_NAME: "a\/b" is not a usable node name/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: '10.0.0.300' }, /MYNET_NODE_ADDRESS: "10.0.0.300" is not an IP address/],
    [
      { MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: '::1' },
      /"::1" cannot carry VXLAN between hosts: it is a loopback address/,
    ],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: 'fe80::1' }, /"fe80::1" cannot carry VXLAN .* link-local/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: 'ff02::1' }, /"ff02::1" cannot carry VXLAN .* multicast/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: '::' }, /"::" cannot carry VXLAN .* unspecified/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: '::ffff:198.18.0.1' }, /is not an IP address/],
    [{ MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_ADDRESS: '127.0.0.1' }, /loopback/],
  ])('refuses %j with a clear message', (env, re) => {
    expect(() => parse(env as Record<string, string>)).toThrow(re);
  });

  it('takes an IPv6 underlay address (issue 23), kept canonical as the kernel prints it', () => {
    const env = { MYNET_ETCD_ENDPOINTS: 'http://e1:2379', MYNET_NODE_NAME: 'a' };
    expect(parse({ ...env, MYNET_NODE_ADDRESS: '2001:db8:62::1' })?.nodeAddress).toBe('2001:db8:62::1');
    expect(parse({ ...env, MYNET_NODE_ADDRESS: '2001:DB8:62:0:0:0:0:1' })?.nodeAddress).toBe('2001:db8:62::1');
  });

  it('a password in an endpoint is not repeated in the error', () => {
    let message = '';
    try {
      parse({ MYNET_ETCD_ENDPOINTS: 'https://root:s3cret@e1:2379' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/must not carry a user or password/);
    expect(message).not.toMatch(/s3cret/);
  });

  it('an unusable hostname is named as such when MYNET_NODE_NAME is not set', () => {
    expect(() => parse({ MYNET_ETCD_ENDPOINTS: 'http://e1:2379' }, '-bad-')).toThrow(/hostname: "-bad-"/);
  });

  it('TLS material never prints', () => {
    const s = parse({ MYNET_ETCD_ENDPOINTS: 'https://e1:2379', MYNET_ETCD_CA: '/ca', MYNET_ETCD_CERT: '/cert', MYNET_ETCD_KEY: '/key' });
    if (!s) throw new Error('no settings');
    const files: Record<string, string> = { '/ca': 'CA-BYTES', '/cert': 'CERT-BYTES', '/key': 'PRIVATE-KEY-BYTES' };
    const tls = readTls(s, (p) => Buffer.from(files[p] ?? ''));
    expect(tls?.key?.toString()).toBe('PRIVATE-KEY-BYTES');
    for (const shown of [JSON.stringify({ tls }), inspect(tls), String(tls), inspect({ tls }, { depth: 5 })])
      expect(shown).not.toMatch(/BYTES/);
  });

  it('an unreadable TLS file names the setting and the path', () => {
    const s = parse({ MYNET_ETCD_ENDPOINTS: 'https://e1:2379', MYNET_ETCD_CA: '/nope/ca.pem' });
    if (!s) throw new Error('no settings');
    expect(() => readTls(s)).toThrow(/MYNET_ETCD_CA: cannot read "\/nope\/ca.pem": ENOENT/);
    expect(readTls(parse({ MYNET_ETCD_ENDPOINTS: 'http://e1:2379' }) as NonNullable<ReturnType<typeof parse>>)).toBeUndefined();
  });
});

describe('MYNET_NODE_ADDRESS default', () => {
  it('the source address towards etcd; loopback (etcd on this host only) is refused with what to set', async () => {
    const { sourceAddressTowards } = await import('../../../src/cluster/node-address.js');
    await expect(sourceAddressTowards('http://127.0.0.1:2379')).rejects.toThrow(
      /MYNET_NODE_ADDRESS: "127.0.0.1" cannot carry VXLAN between hosts/,
    );
    await expect(sourceAddressTowards('http://mnt-no-such-host.invalid:2379')).rejects.toThrow(
      /MYNET_NODE_ADDRESS: not set, and no IPv4 route towards etcd at mnt-no-such-host.invalid:2379/,
    );
    // An etcd at an IPv6 address is asked over IPv6 (issue 23): the source is ::1 here, refused as loopback.
    await expect(sourceAddressTowards('http://[::1]:2379')).rejects.toThrow(/MYNET_NODE_ADDRESS: "::1" cannot carry VXLAN between hosts/);
  });
});

describe('checkTls (issue 22, finding 20)', () => {
  it("a CA that is no certificate, a key that is not the certificate's: refused naming the setting, never the contents", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mnt-tls-'));
    try {
      for (const n of ['a', 'b'])
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'ec',
            '-pkeyopt',
            'ec_paramgen_curve:prime256v1',
            '-nodes',
            '-days',
            '1',
            '-subj',
            `/CN=mnt-${n}`,
            '-keyout',
            join(dir, `${n}.key`),
            '-out',
            join(dir, `${n}.pem`),
          ],
          { stdio: 'ignore' },
        );
      const f = (n: string): Buffer => readFileSync(join(dir, n));
      expect(checkTls(new TlsMaterial(f('a.pem'), f('a.pem'), f('a.key')))).toBeInstanceOf(TlsMaterial);
      expect(() => checkTls(new TlsMaterial(Buffer.from('SECRET-NOT-A-CERT'), undefined, undefined))).toThrow(
        /^MYNET_ETCD_CA: is not a PEM certificate/,
      );
      expect(() => checkTls(new TlsMaterial(undefined, f('a.pem'), f('b.key')))).toThrow(
        /^MYNET_ETCD_KEY: is not the private key of the certificate in MYNET_ETCD_CERT$/,
      );
      expect(() => checkTls(new TlsMaterial(undefined, f('a.pem'), Buffer.from('SECRET-NOT-A-KEY')))).toThrow(
        /^MYNET_ETCD_KEY: is not an unencrypted PEM private key$/,
      );
      expect(() => checkTls(new TlsMaterial(undefined, Buffer.from('SECRET'), f('a.key')))).toThrow(
        /^MYNET_ETCD_CERT: is not a PEM certificate/,
      );
      for (const bad of [Buffer.from('SECRET-NOT-A-CERT')]) {
        const msg = (() => {
          try {
            checkTls(new TlsMaterial(bad, undefined, undefined));
            return '';
          } catch (e) {
            return (e as Error).message;
          }
        })();
        expect(msg).not.toContain('SECRET');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
