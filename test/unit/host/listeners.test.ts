/**
 * The host's listeners, parsed from /proc text (src/host/ports.ts) with an injected reader: only
 * the files of the protocols asked for are read, TCP counts LISTEN sockets only, IPv4-mapped IPv6
 * addresses are their IPv4 address, and the ephemeral range falls back to Linux's default.
 */
import { describe, expect, it } from 'vitest';
import { readHostPorts } from '../../../src/host/listeners.js';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const files: Record<string, string> = {
  // 127.0.0.1:8080 LISTEN; 0.0.0.0:22 LISTEN; 10.0.0.5:40000 ESTABLISHED (not a listener)
  '/proc/net/tcp': `${HEAD}   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n   2: 0500000A:9C40 0100000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 3\n`,
  // [::]:443 LISTEN; ::ffff:192.168.1.2:9000 LISTEN (dual-stack socket bound to an IPv4 address); ::1:631 LISTEN
  '/proc/net/tcp6': `${HEAD}   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1\n   1: 0000000000000000FFFF00000201A8C0:2328 00000000000000000000000000000000:0000 0A 0 0 0 0 0 2\n   2: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 0 0 0 0 0 3\n`,
  // 0.0.0.0:53 bound (07)
  '/proc/net/udp': `${HEAD}   0: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4\n`,
  '/proc/sys/net/ipv4/ip_local_port_range': '40000\t50000\n',
};

function reader(content: Record<string, string> = files): { read: (p: string) => Promise<string>; asked: string[] } {
  const asked: string[] = [];
  return { asked, read: (p) => (asked.push(p), Promise.resolve(content[p] ?? '')) };
}

describe('readHostPorts', () => {
  it('TCP: listeners of both families, by port; established sockets are not listeners', async () => {
    const r = reader();
    const h = await readHostPorts(['tcp'], r.read);
    expect(h.listening('tcp', 8080)).toEqual(['127.0.0.1']);
    expect(h.listening('tcp', 22)).toEqual(['0.0.0.0']);
    expect(h.listening('tcp', 443)).toEqual(['::']);
    expect(h.listening('tcp', 9000)).toEqual(['192.168.1.2']);
    expect(h.listening('tcp', 631)).toEqual(['::1']);
    expect(h.listening('tcp', 40000)).toEqual([]);
    // ... but its local port cannot be bound: a range or HostPort 0 skips it.
    expect([h.busy?.('tcp', 40000), h.busy?.('tcp', 8080), h.busy?.('udp', 40000)]).toEqual([true, false, false]);
  });

  it('reads only the files of the protocols asked for (each read walks the kernel socket table)', async () => {
    const r = reader();
    const h = await readHostPorts(['tcp', 'tcp'], r.read);
    expect(r.asked.sort()).toEqual(['/proc/net/tcp', '/proc/net/tcp6', '/proc/sys/net/ipv4/ip_local_port_range']);
    expect(h.listening('udp', 53)).toEqual([]);
    const u = reader();
    expect((await readHostPorts(['udp'], u.read)).listening('udp', 53)).toEqual(['0.0.0.0']);
    const s = reader();
    await readHostPorts(['sctp'], s.read);
    expect(s.asked).toEqual(['/proc/sys/net/ipv4/ip_local_port_range']);
  });

  it('the ephemeral range from the kernel, or Linux default when unreadable', async () => {
    expect((await readHostPorts([], reader().read)).ephemeral).toEqual([40000, 50000]);
    expect((await readHostPorts([], reader({}).read)).ephemeral).toEqual([32768, 60999]);
    expect((await readHostPorts([], reader({ '/proc/sys/net/ipv4/ip_local_port_range': '9 1' }).read)).ephemeral).toEqual([32768, 60999]);
  });

  it('a read that fails for another reason than a missing file fails the call', async () => {
    await expect(readHostPorts(['tcp'], () => Promise.reject(new Error('EACCES')))).rejects.toThrow('EACCES');
  });
});
