/**
 * Issue 14.8: the Docker socket is optional. A path that exists and is no socket (the managed
 * plugin mounts /dev/null there unless docker.source is set) turns names off, said in
 * `mynet status`; a real socket, a missing one (dockerd not up yet) or a TCP DOCKER_HOST keep
 * them on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { namesView } from '../../../src/admin/views.js';
import { PLAIN, renderStatus } from '../../../src/cli/render.js';
import { dockerTarget, namesSource } from '../../../src/dns/engine.js';

const dir = mkdtempSync(join(tmpdir(), 'mnt-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('namesSource: whether the Docker socket is there', () => {
  it('/dev/null in its place (the managed plugin without docker.source): off, saying how to turn it on', async () => {
    const s = await namesSource(dockerTarget('unix:///dev/null'));
    expect(s).toMatchObject({ on: false, socket: '/dev/null' });
    expect(!s.on && s.why).toMatch(/not a socket.*docker plugin set <plugin> docker\.source=\/var\/run\/docker\.sock/);
  });

  it('a regular file: off', async () => {
    writeFileSync(join(dir, 'file.sock'), '');
    expect((await namesSource(dockerTarget(`unix://${join(dir, 'file.sock')}`))).on).toBe(false);
  });

  it('a listening unix socket, a missing one and a TCP DOCKER_HOST: on', async () => {
    const path = join(dir, 'docker.sock');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      expect(await namesSource(dockerTarget(`unix://${path}`))).toEqual({ on: true, socket: path });
    } finally {
      srv.close();
    }
    expect((await namesSource(dockerTarget(`unix://${join(dir, 'absent.sock')}`))).on).toBe(true);
    expect(await namesSource(dockerTarget('tcp://127.0.0.1:2375'))).toEqual({ on: true, socket: 'tcp://127.0.0.1:2375' });
  });
});

describe('mynet status says whether names are on', () => {
  it('off: the reason, first, before the networks and the health line', async () => {
    const off = namesView(await namesSource(dockerTarget('unix:///dev/null')));
    expect(renderStatus([], 0, PLAIN, off)).toBe(`names: off: ${off.why}\nno mynet networks`);
    expect(off.why).toMatch(/docker\.source=/);
  });

  it('on: where from; without the field (an older plugin) nothing is added', () => {
    expect(renderStatus([], 0, PLAIN, { on: true, socket: '/var/run/docker.sock' })).toBe(
      'names: on, from the Docker API at /var/run/docker.sock\nno mynet networks',
    );
    expect(renderStatus([], 0, PLAIN)).toBe('no mynet networks');
  });
});
