/**
 * Issue 16: parity with Docker's bridge driver on the engine the tier runs on (scripts/engines.sh
 * runs it on 20.10, 26.1 with --userland-proxy=false and 28.5 with --ip-forward-no-drop). A
 * container reaching ITS OWN published port through the host's address gets an answer on the
 * bridge driver (docker-proxy answers, or DNAT plus hairpin mode when the proxy is off); so it
 * must on mynet, as must a peer on the same network. A container of another network gets an
 * answer from mynet on every engine (a published port is for everyone, as through docker-proxy);
 * the bridge driver with --userland-proxy=false drops it (its isolation chains see the DNATed
 * flow between two bridges), which the README says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE } from './helpers/dockerd.js';
import { httpGetFrom } from './helpers/net.js';
import { type Outside, makeOutside } from './helpers/outside.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources } from './helpers/resources.js';

const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];

describe(`hairpin parity with the bridge driver${ENGINE ? ` on ${ENGINE}` : ''}`, () => {
  let plugin: PluginHandle;
  let outside: Outside;
  const r = new Resources('hp');

  beforeAll(async () => {
    plugin = await startPlugin();
    outside = await makeOutside(3);
  });
  afterAll(async () => {
    await r.cleanup();
    await outside?.destroy();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
  });

  /** What each of the three gets when it asks the host's address for web's published port. */
  async function answers(driver: string[], subnet: string, other: string, port: number): Promise<Record<string, string>> {
    const n = await r.network([...driver, '--subnet', subnet]);
    const o = await r.network([...driver, '--subnet', other]);
    const web = await r.container(['--network', n, '-p', `${port}:80`], HTTPD);
    const peer = await r.container(['--network', n]);
    const stranger = await r.container(['--network', o]);
    return {
      self: await httpGetFrom(web, outside.hostIp, port),
      peer: await httpGetFrom(peer, outside.hostIp, port),
      otherNetwork: await httpGetFrom(stranger, outside.hostIp, port),
    };
  }

  it('a container reaches its own published port through the host address, on the bridge driver and on mynet alike', async () => {
    const bridge = await answers([], '10.87.0.0/24', '10.87.1.0/24', 8091);
    const mynet = await answers(['-d', 'mynet'], '10.88.0.0/24', '10.88.1.0/24', 8092);
    console.log(`[hairpin] ${ENGINE || 'dockerd'}: bridge ${JSON.stringify(bridge)}, mynet ${JSON.stringify(mynet)}`);
    const answered = 'mynet-e2e';
    expect({ bridgeSelf: bridge.self, bridgePeer: bridge.peer }).toEqual({ bridgeSelf: answered, bridgePeer: answered });
    expect(mynet).toEqual({ self: answered, peer: answered, otherNetwork: answered });
    // The bridge driver's answer to another network: docker-proxy's (proxy on) or none (off).
    expect(bridge.otherNetwork).toBe(/--userland-proxy=false/.test(ENGINE) ? '' : answered);
  });
});
