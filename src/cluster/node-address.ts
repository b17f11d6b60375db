/**
 * MYNET_NODE_ADDRESS's default: the source address this host uses towards etcd, which is the
 * address the other hosts most likely reach it on. A connected UDP socket asks the kernel's
 * routing table without sending a packet.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { PluginError } from '../errors.js';
import { checkNodeAddress } from './settings.js';

export async function sourceAddressTowards(endpoint: string): Promise<string> {
  const u = new URL(endpoint);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  // An etcd at an IPv6 address is asked over IPv6 (an IPv6 underlay, issue 23); a name over IPv4.
  const family = isIP(host) === 6 ? 6 : 4;
  const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      // The callback also runs when the name did not resolve (then the socket is not
      // connected and remoteAddress throws, with the lookup's error as the cause).
      sock.connect(port, host, () => {
        try {
          sock.remoteAddress();
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    return checkNodeAddress('MYNET_NODE_ADDRESS', sock.address().address);
  } catch (err) {
    if (err instanceof PluginError) throw err;
    throw new PluginError(
      'INVALID_REQUEST',
      `MYNET_NODE_ADDRESS: not set, and no IPv${family} route towards etcd at ${u.host} to take it from (${(err as Error).message}); set it to this host's underlay address`,
      { cause: err },
    );
  } finally {
    sock.close();
  }
}
