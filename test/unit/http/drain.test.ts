/**
 * Stopping the plugin's HTTP server (src/http/drain.ts): a client that connected and never sent
 * a request must not hold the shutdown, and an answer under way must still arrive whole.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { drainer } from '../../../src/http/drain.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function serve(handlerMs: number): Promise<{ path: string; stop: (done: () => void) => void; inHandler: Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mnt-drain-'));
  dirs.push(dir);
  const path = join(dir, 's.sock');
  let entered: () => void = () => undefined;
  const inHandler = new Promise<void>((r) => (entered = r));
  // The handler answers handlerMs after it started: a request that is under way when stop() comes.
  const server = createServer((_req, res) => {
    entered();
    setTimeout(() => res.end('whole answer'), handlerMs);
  });
  const stop = drainer(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, stop, inHandler };
}

const stopped = (stop: (done: () => void) => void): Promise<number> => {
  const t0 = Date.now();
  return new Promise((r) => stop(() => r(Date.now() - t0)));
};

describe('drainer', () => {
  it('a connection that never sends a request does not hold the stop', async () => {
    const s = await serve(0);
    const silent = connect(s.path);
    await new Promise((r) => silent.once('connect', r));
    const closed = new Promise((r) => silent.once('close', r));
    expect(await stopped(s.stop)).toBeLessThan(1000);
    await closed;
  });

  it('an answer under way arrives whole, then the server stops; an idle keep-alive connection does not hold it', async () => {
    const s = await serve(300);
    const silent = connect(s.path);
    await new Promise((r) => silent.once('connect', r));
    const body = new Promise<string>((resolve, reject) => {
      const req = request({ socketPath: s.path, path: '/', method: 'POST', headers: { connection: 'keep-alive' } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end('{}');
    });
    await s.inHandler;
    const ms = stopped(s.stop);
    expect(await body).toBe('whole answer');
    expect(await ms).toBeLessThan(1000);
  });
});
