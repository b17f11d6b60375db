/**
 * Reading the conntrack table in-process (host/execa-executor.ts answeredBy): whether a flow is
 * answered by an address, as `conntrack -D --reply-src` would match it, from lines of
 * /proc/<pid>/net/nf_conntrack as this machine's kernel writes them (captured after
 * `conntrack -I` in a throwaway namespace).
 */
import { describe, expect, it } from 'vitest';
import { answeredBy } from '../../../src/host/execa-executor.js';

const V4 =
  'ipv4     2 udp      17 99 src=203.0.113.1 dst=203.0.113.2 sport=5000 dport=53 [UNREPLIED] src=203.0.113.3 dst=203.0.113.1 sport=53 dport=5000 mark=0 zone=0 use=2';
const V6 =
  'ipv6     10 udp      17 99 src=fd00:0001:0000:0000:0000:0000:0000:0001 dst=fd00:0001:0000:0000:0000:0000:0000:0002 sport=5000 dport=53 [UNREPLIED] src=fd00:0001:0000:0000:0000:0000:0000:0003 dst=fd00:0001:0000:0000:0000:0000:0000:0001 sport=53 dport=5000 mark=0 zone=0 use=2';
const table = `${V4}\n${V6}\n`;

describe('answeredBy', () => {
  it('finds the flow answered by an address (the reply tuple), IPv4 and IPv6 written in full', () => {
    expect(answeredBy(table, '203.0.113.3')).toBe(true);
    expect(answeredBy(table, 'fd00:1::3')).toBe(true);
  });

  it('an address only in the original tuple, or nowhere, answers no flow', () => {
    expect(answeredBy(table, '203.0.113.1')).toBe(false); // the client: original src, reply dst
    expect(answeredBy(table, '203.0.113.2')).toBe(false); // the original destination before DNAT
    expect(answeredBy(table, 'fd00:1::1')).toBe(false);
    expect(answeredBy(table, '203.0.113.30')).toBe(false); // a prefix of .3 is another address
    expect(answeredBy('', '203.0.113.3')).toBe(false);
  });

  it('an address it cannot compare is left to conntrack', () => {
    expect(answeredBy(table, 'not-an-address')).toBe(true);
  });
});
