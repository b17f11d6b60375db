import { describe, expect, it } from 'vitest';
import { bitsOf, formatIp, parseIp, sameIp } from '../../../src/ip/address.js';

const v4 = (s: string): bigint => {
  const a = parseIp(s);
  if (!a || a.family !== 4) throw new Error(`${s} did not parse as IPv4`);
  return a.value;
};
const v6 = (s: string): bigint => {
  const a = parseIp(s);
  if (!a || a.family !== 6) throw new Error(`${s} did not parse as IPv6`);
  return a.value;
};
/** parse then format: the canonical text. */
const canon = (s: string): string => {
  const a = parseIp(s);
  if (!a) throw new Error(`${s} did not parse`);
  return formatIp(a);
};

describe('parseIp / formatIp, IPv4', () => {
  it('parses dotted quads to their 32-bit value', () => {
    expect(v4('0.0.0.0')).toBe(0n);
    expect(v4('255.255.255.255')).toBe(0xffffffffn);
    expect(v4('10.1.2.3')).toBe(0x0a010203n);
    expect(v4('192.168.0.1')).toBe(0xc0a80001n);
    expect(v4('1.0.0.0')).toBe(0x01000000n);
  });

  it('formats back to the same dotted quad', () => {
    for (const s of ['0.0.0.0', '255.255.255.255', '10.1.2.3', '172.20.0.1', '100.64.9.99', '1.10.100.200']) {
      expect(canon(s)).toBe(s);
    }
    expect(formatIp({ family: 4, value: 0x0a000001n })).toBe('10.0.0.1');
  });

  it('refuses leading zeros in octets', () => {
    for (const s of ['010.1.2.3', '10.01.2.3', '10.1.002.3', '1.2.3.00', '00.0.0.0', '1.2.3.04']) {
      expect(parseIp(s), s).toBeUndefined();
    }
  });

  it('refuses garbage', () => {
    const bad = [
      '',
      ' ',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1.2.3.256',
      '999.1.1.1',
      '1.2.3.4 ',
      ' 1.2.3.4',
      'a.b.c.d',
      '1.2.3.4/24',
      '-1.2.3.4',
      '1..2.3',
      '1.2.3.',
      '.1.2.3',
      '0x1.2.3.4',
      '1.2.3.4\n',
      '1,2,3,4',
      '١.٢.٣.٤',
      'localhost',
      '1.2.3.4:80',
    ];
    for (const s of bad) expect(parseIp(s), JSON.stringify(s)).toBeUndefined();
  });

  it('refuses non-strings without throwing', () => {
    expect(parseIp(undefined as unknown as string)).toBeUndefined();
    expect(parseIp(12 as unknown as string)).toBeUndefined();
    expect(parseIp(null as unknown as string)).toBeUndefined();
  });
});

describe('parseIp / formatIp, IPv6', () => {
  it('parses the usual forms', () => {
    expect(v6('::')).toBe(0n);
    expect(v6('::1')).toBe(1n);
    expect(v6('1::')).toBe(1n << 112n);
    expect(v6('2001:db8::1')).toBe((0x20010db8n << 96n) | 1n);
    expect(v6('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe(v6('2001:db8::1'));
    expect(v6('FD00:150::20')).toBe(v6('fd00:150::20'));
    expect(v6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe((1n << 128n) - 1n);
    expect(v6('1:2:3:4:5:6:7::')).toBe(v6('1:2:3:4:5:6:7:0'));
    expect(v6('::2:3:4:5:6:7:8')).toBe(v6('0:2:3:4:5:6:7:8'));
  });

  it('formats canonically (RFC 5952)', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'], // leading zeros dropped, longest run compressed
      ['2001:DB8::ABCD', '2001:db8::abcd'], // lowercase
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // tie: the first run is compressed
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins over an earlier shorter one
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
      ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // ...even when the input compressed it
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['fd42:4d4e:0:1::', 'fd42:4d4e:0:1::'],
      ['0:1:0:0:1:0:0:0', '0:1:0:0:1::'],
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ];
    for (const [input, out] of cases) expect(canon(input), input).toBe(out);
  });

  it('parses an embedded IPv4 tail', () => {
    expect(v6('::1.2.3.4')).toBe(0x01020304n);
    expect(v6('64:ff9b::192.0.2.33')).toBe(v6('64:ff9b::c000:221'));
    expect(v6('1:2:3:4:5:6:10.0.0.1')).toBe(v6('1:2:3:4:5:6:a00:1'));
    expect(canon('64:ff9b::192.0.2.33')).toBe('64:ff9b::c000:221');
  });

  it('refuses a bad embedded IPv4 tail', () => {
    for (const s of ['::1.2.3', '::1.2.3.04', '::256.1.1.1', '1.2.3.4::', '::1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4.5']) {
      expect(parseIp(s), s).toBeUndefined();
    }
  });

  it('refuses IPv4-mapped addresses in any spelling', () => {
    for (const s of [
      '::ffff:1.2.3.4',
      '::ffff:102:304',
      '::FFFF:10.0.0.1',
      '0:0:0:0:0:ffff:a00:1',
      '::ffff:0:0',
      '::ffff:255.255.255.255',
    ]) {
      expect(parseIp(s), s).toBeUndefined();
    }
    // Neighbours of the mapped range are ordinary IPv6 addresses.
    expect(canon('::fffe:1.2.3.4')).toBe('::fffe:102:304');
    expect(canon('::1:ffff:1.2.3.4')).toBe('::1:ffff:102:304');
  });

  it('refuses garbage', () => {
    const bad = [
      ':',
      ':::',
      '1:::2',
      '1::2::3',
      '12345::',
      'g::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      'fe80::1%eth0',
      ':1::',
      '1::2:',
      '[::1]',
      '::1/128',
      '1:2',
      ' ::1',
      '::1 ',
      'ff',
      '0x1::',
      `${'1:'.repeat(30)}1`,
    ];
    for (const s of bad) expect(parseIp(s), JSON.stringify(s)).toBeUndefined();
  });

  it('round-trips formatted values', () => {
    const values = [0n, 1n, 0xffffn << 112n, (1n << 128n) - 1n, 0x20010db8000000000000000000000001n, 0xfd420000000000000001000000000000n];
    for (const value of values) {
      const text = formatIp({ family: 6, value });
      expect(parseIp(text)).toEqual({ family: 6, value });
    }
  });
});

describe('helpers', () => {
  it('bitsOf and sameIp', () => {
    expect(bitsOf(4)).toBe(32);
    expect(bitsOf(6)).toBe(128);
    expect(sameIp({ family: 4, value: 1n }, { family: 4, value: 1n })).toBe(true);
    expect(sameIp({ family: 4, value: 1n }, { family: 6, value: 1n })).toBe(false);
    expect(sameIp({ family: 6, value: 1n }, { family: 6, value: 2n })).toBe(false);
  });
});
