import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listenUnix } from '../../../src/http/socket.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('listenUnix', () => {
  it('the socket has its mode from the moment it exists (no window with the umask mode), and the umask is put back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mnt-sock-'));
    dirs.push(dir);
    const path = join(dir, 'admin.sock');
    const server = createServer();
    let modeAtListen = -1;
    // 'listening' comes right after bind, before listenUnix's chmod.
    server.once('listening', () => {
      modeAtListen = statSync(path).mode & 0o777;
    });
    const before = process.umask();
    await listenUnix(server, path, 0o600);
    try {
      expect(modeAtListen).toBe(0o600);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(process.umask()).toBe(before);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
