import { describe, expect, it } from 'vitest';
import { sysfsLinkGroup } from '../../../src/host/sysfs-link.js';

const failing = (code: string) => (): Promise<string> => Promise.reject(Object.assign(new Error(`${code}: fake`), { code }));

describe('sysfsLinkGroup', () => {
  it('reads the group of a link that is there', async () => {
    expect(await sysfsLinkGroup('mnhx', (path) => Promise.resolve(path.endsWith('/mnhx/netdev_group') ? '4242\n' : 'x'))).toBe(4242);
  });
  it('takes ENOENT (no such link) and ENODEV (gone between the open and the read) for absence', async () => {
    expect(await sysfsLinkGroup('mnhx', failing('ENOENT'))).toBeUndefined();
    expect(await sysfsLinkGroup('mnhx', failing('ENODEV'))).toBeUndefined();
  });
  it('rethrows any other failure', async () => {
    await expect(sysfsLinkGroup('mnhx', failing('EACCES'))).rejects.toThrow('EACCES');
  });
});
