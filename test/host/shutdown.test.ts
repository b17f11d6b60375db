/**
 * SIGTERM with a client that connected to the plugin's socket and never sent a request (dockerd
 * opens connections ahead; a hostile client may never write): the real plugin (node
 * dist/main.js, in a throwaway namespace) still stops cleanly at once, exit 0 with its state
 * saved, instead of waiting for its 8 s limit and exiting 1 (src/http/drain.ts).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNetns, destroyCreated } from '../helpers/netns.js';
import { PluginProcess } from './plugin-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mnt-shutdown-'));
let plugin: PluginProcess | undefined;

afterAll(async () => {
  await plugin?.kill9();
  await destroyCreated();
  rmSync(dir, { recursive: true, force: true });
});

describe('shutdown', () => {
  it('SIGTERM with a silent connection open: exit 0 within 2 s, state saved', async () => {
    const ns = await createNetns();
    const p = new PluginProcess(() => ns.name, join(dir, 'plugin'), { MYNET_DNS_LISTEN: '', MYNET_LOG_LEVEL: 'error' });
    plugin = p;
    await p.start(); // both sockets answer: main.ts listens on the admin socket last
    const silent = connect(p.socket);
    await new Promise((r) => silent.once('connect', r));
    silent.on('error', () => undefined);
    const t0 = Date.now();
    const code = await p.stop(); // SIGTERM to the plugin itself (ip netns exec execs node in place)
    const ms = Date.now() - t0;
    silent.destroy();
    expect(code, p.logTail()).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(existsSync(join(p.stateDir, 'state.json'))).toBe(true);
    expect(existsSync(p.socket)).toBe(false);
  });
});
