/**
 * A link's group read from sysfs, in this process's own namespace (no process spawned).
 *
 * A link can go between the open and the read: the veth of a container whose namespace dockerd
 * (or a test) has just removed. The kernel then answers the read with ENODEV, not ENOENT; both
 * mean the link is not there (a failed DeleteEndpoint on ENODEV was seen in the host tier).
 */
import { readFile } from 'node:fs/promises';

type Read = (path: string, encoding: 'utf8') => Promise<string>;

const GONE = new Set(['ENOENT', 'ENODEV']);

export async function sysfsLinkGroup(name: string, read: Read = readFile): Promise<number | undefined> {
  try {
    return Number((await read(`/sys/class/net/${name}/netdev_group`, 'utf8')).trim());
  } catch (err) {
    if (GONE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
}
