import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/ip/address.js';
import {
  type Cidr,
  contains,
  firstOf,
  formatCidr,
  hostRange,
  lastOf,
  mask,
  overlaps,
  parseCidr,
  sizeOf,
  within,
} from '../../../src/ip/cidr.js';

const cidr = (s: string): Cidr => {
  const r = parseCidr(s);
  if (!r.ok) throw new Error(`${s}: ${r.why}`);
  return r.cidr;
};
const ip = (s: string) => {
  const a = parseIp(s);
  if (!a) throw new Error(`${s} is not an address`);
  return a;
};
const val = (s: string): bigint => ip(s).value;

describe('parseCidr', () => {
  it('masks the host bits and keeps the address as written', () => {
    const r = parseCidr('10.1.2.3/16');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(formatCidr(r.cidr)).toBe('10.1.0.0/16');
    expect(r.addr).toEqual({ family: 4, value: val('10.1.2.3') });
    expect(r.cidr).toEqual({ family: 4, base: val('10.1.0.0'), prefix: 16 });
  });

  it('gives canonical text for both families', () => {
    const cases: [string, string][] = [
      ['10.150.0.254/16', '10.150.0.0/16'],
      ['172.20.0.1/16', '172.20.0.0/16'],
      ['192.168.1.77/0', '0.0.0.0/0'],
      ['192.168.1.77/32', '192.168.1.77/32'],
      ['192.168.1.77/31', '192.168.1.76/31'],
      ['2001:DB8::1/64', '2001:db8::/64'],
      ['fd00:150::20/64', 'fd00:150::/64'],
      ['fd42:4d4e:0:0:ffff::1/48', 'fd42:4d4e::/48'],
      ['::1/128', '::1/128'],
      ['ffff::1/0', '::/0'],
      ['2001:db8::ff/127', '2001:db8::fe/127'],
    ];
    for (const [input, out] of cases) expect(formatCidr(cidr(input)), input).toBe(out);
  });

  it('refuses what is not addr/len', () => {
    const bad = [
      '10.0.0.0',
      '10.0.0.0/',
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/-1',
      '10.0.0.0/abc',
      '10.0.0.0/24/1',
      '10.0.0/24',
      '010.0.0.0/8',
      '::ffff:10.0.0.0/104',
      'fe80::/64%eth0',
      '/24',
      '',
      '10.0.0.0/ 24',
      '10.0.0.0/2 4',
      '10.0.0.0/1000',
    ];
    for (const s of bad) {
      expect(parseCidr(s), s).toEqual({ ok: false, why: expect.stringMatching(/\S/) as unknown });
    }
    expect(parseCidr(42 as unknown as string)).toEqual({ ok: false, why: 'not a string' });
  });

  it('says why it refused', () => {
    expect(parseCidr('10.0.0.0')).toMatchObject({ ok: false, why: expect.stringContaining('no prefix length') as unknown });
    expect(parseCidr('10.0.0.0/33')).toMatchObject({ ok: false, why: expect.stringContaining('over 32') as unknown });
    expect(parseCidr('::/129')).toMatchObject({ ok: false, why: expect.stringContaining('over 128') as unknown });
    expect(parseCidr('nope/8')).toMatchObject({ ok: false, why: expect.stringContaining('not a valid IP address') as unknown });
  });
});

describe('mask, first, last, size', () => {
  it('mask', () => {
    expect(mask(4, 0)).toBe(0n);
    expect(mask(4, 8)).toBe(0xff000000n);
    expect(mask(4, 24)).toBe(0xffffff00n);
    expect(mask(4, 32)).toBe(0xffffffffn);
    expect(mask(6, 0)).toBe(0n);
    expect(mask(6, 64)).toBe(((1n << 64n) - 1n) << 64n);
    expect(mask(6, 128)).toBe((1n << 128n) - 1n);
  });

  it('first, last and size of a prefix', () => {
    const c = cidr('10.1.0.0/24');
    expect(firstOf(c)).toBe(val('10.1.0.0'));
    expect(lastOf(c)).toBe(val('10.1.0.255'));
    expect(sizeOf(c)).toBe(256n);
    expect(lastOf(cidr('0.0.0.0/0'))).toBe(0xffffffffn);
    expect(sizeOf(cidr('0.0.0.0/0'))).toBe(1n << 32n);
    expect(sizeOf(cidr('10.0.0.1/32'))).toBe(1n);
    const v6 = cidr('fd00:150::/64');
    expect(lastOf(v6)).toBe(val('fd00:150::ffff:ffff:ffff:ffff'));
    expect(sizeOf(v6)).toBe(1n << 64n);
    expect(lastOf(cidr('::/0'))).toBe((1n << 128n) - 1n);
  });
});

describe('contains / overlaps / within', () => {
  it('contains', () => {
    const c = cidr('10.1.0.0/16');
    expect(contains(c, ip('10.1.0.0'))).toBe(true);
    expect(contains(c, ip('10.1.255.255'))).toBe(true);
    expect(contains(c, ip('10.2.0.0'))).toBe(false);
    expect(contains(c, ip('10.0.255.255'))).toBe(false);
    expect(contains(cidr('0.0.0.0/0'), ip('1.2.3.4'))).toBe(true);
    expect(contains(cidr('0.0.0.0/0'), ip('::1'))).toBe(false); // family first
    expect(contains(cidr('::/0'), ip('1.2.3.4'))).toBe(false);
    expect(contains(cidr('fd00:150::/64'), ip('fd00:150::20'))).toBe(true);
    expect(contains(cidr('fd00:150::/64'), ip('fd00:151::20'))).toBe(false);
    expect(contains(cidr('10.0.0.5/32'), ip('10.0.0.5'))).toBe(true);
    expect(contains(cidr('10.0.0.5/32'), ip('10.0.0.6'))).toBe(false);
  });

  it('overlaps', () => {
    expect(overlaps(cidr('10.0.0.0/8'), cidr('10.1.0.0/16'))).toBe(true);
    expect(overlaps(cidr('10.1.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(overlaps(cidr('10.1.0.0/24'), cidr('10.1.0.0/24'))).toBe(true);
    expect(overlaps(cidr('10.1.0.0/24'), cidr('10.1.1.0/24'))).toBe(false); // adjacent
    expect(overlaps(cidr('10.1.0.0/24'), cidr('10.1.0.255/32'))).toBe(true);
    expect(overlaps(cidr('0.0.0.0/0'), cidr('192.168.0.0/16'))).toBe(true);
    expect(overlaps(cidr('10.0.0.0/8'), cidr('::/0'))).toBe(false); // different families never overlap
    expect(overlaps(cidr('fd00::/8'), cidr('fd42:4d4e::/48'))).toBe(true);
    expect(overlaps(cidr('fd42:4d4e::/64'), cidr('fd42:4d4e:0:1::/64'))).toBe(false);
  });

  it('within', () => {
    expect(within(cidr('10.150.5.0/24'), cidr('10.150.0.0/16'))).toBe(true);
    expect(within(cidr('10.150.0.0/16'), cidr('10.150.0.0/16'))).toBe(true);
    expect(within(cidr('10.150.0.0/16'), cidr('10.150.5.0/24'))).toBe(false); // larger than outer
    expect(within(cidr('10.151.5.0/24'), cidr('10.150.0.0/16'))).toBe(false);
    expect(within(cidr('10.0.0.0/8'), cidr('::/0'))).toBe(false);
    expect(within(cidr('fd00:150::/80'), cidr('fd00:150::/64'))).toBe(true);
  });
});

describe('hostRange', () => {
  const range = (s: string): [string, string] => {
    const c = cidr(s);
    const r = hostRange(c);
    const fmt = (v: bigint): string => formatCidr({ family: c.family, base: v, prefix: c.family === 4 ? 32 : 128 }).split('/')[0] as string;
    return [fmt(r.first), fmt(r.last)];
  };

  it('IPv4 loses network and broadcast down to /30', () => {
    expect(range('10.1.0.0/24')).toEqual(['10.1.0.1', '10.1.0.254']);
    expect(range('10.0.0.0/8')).toEqual(['10.0.0.1', '10.255.255.254']);
    expect(range('10.1.0.4/30')).toEqual(['10.1.0.5', '10.1.0.6']);
  });

  it('IPv4 /31 and /32 keep every address (RFC 3021)', () => {
    expect(range('10.1.0.4/31')).toEqual(['10.1.0.4', '10.1.0.5']);
    expect(range('10.1.0.4/32')).toEqual(['10.1.0.4', '10.1.0.4']);
  });

  it('IPv6 loses only the subnet-router anycast address, down to /126', () => {
    expect(range('fd00:150::/64')).toEqual(['fd00:150::1', 'fd00:150::ffff:ffff:ffff:ffff']);
    expect(range('fd00::/126')).toEqual(['fd00::1', 'fd00::3']);
  });

  it('IPv6 /127 and /128 keep every address', () => {
    expect(range('fd00::/127')).toEqual(['fd00::', 'fd00::1']);
    expect(range('fd00::5/128')).toEqual(['fd00::5', 'fd00::5']);
  });
});
