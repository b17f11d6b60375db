/**
 * Listening on a unix socket: the directory is made if needed, a stale socket file (no process
 * behind it) is replaced, a live one is not stolen, and the socket is not world-accessible
 * (dockerd connects as root).
 */
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { createConnection, type Server } from 'node:net';
import { dirname } from 'node:path';
import { PluginError } from '../errors.js';

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function listenUnix(server: Server, path: string, mode = 0o660): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const existing = await stat(path).catch(() => undefined);
  if (existing) {
    if (!existing.isSocket()) throw new PluginError('CONFLICT', `MYNET_SOCKET: ${path} exists and is not a socket`);
    if (await answers(path)) throw new PluginError('CONFLICT', `MYNET_SOCKET: another process is listening on ${path}`);
    await rm(path, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket file is made by bind(), inside listen(), with the process umask: made under a
    // umask that leaves exactly `mode`, it is never reachable with a wider mode, not even
    // between bind and chmod. listen() binds a unix socket synchronously, so the umask is
    // restored before anything else of this process can create a file.
    const umask = process.umask(0o777 & ~mode);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  await chmod(path, mode);
}
