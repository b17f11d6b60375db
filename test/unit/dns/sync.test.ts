import { Readable } from 'node:stream';
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine, dockerTarget } from '../../../src/dns/engine.js';
import { DockerNameSync } from '../../../src/dns/sync.js';
import { fakeEngine } from '../../helpers/fake-engine.js';
import { waitUntil } from '../../helpers/wait.js';
import { silentLog } from '../support.js';

const BASE = 'http://127.0.0.1:2375';
const engine = new Engine(dockerTarget('tcp://127.0.0.1:2375'), 1000);
const inspect = (id: string, name: string, ip: string, net = 'front', netId = 'n1') => ({
  Id: id,
  Name: `/${name}`,
  State: { Running: true },
  NetworkSettings: { Networks: { [net]: { NetworkID: netId, IPAddress: ip, GlobalIPv6Address: '', Aliases: [id.slice(0, 12)] } } },
});
const event = (o: object): string => `${JSON.stringify(o)}\n`;
const waitFor = (fn: () => boolean, ms = 3000): Promise<number> => waitUntil(fn.toString(), fn, { ms });
const a = (s: DockerNameSync, name: string): string[] => {
  const r = s.table().lookup(name);
  return r.kind === 'answer' ? [...r.a] : [];
};

describe('the Engine API client and the name sync (nock)', () => {
  let sync: DockerNameSync | undefined;
  beforeEach(() => {
    nock.disableNetConnect();
  });
  afterEach(() => {
    sync?.stop();
    sync = undefined;
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('reads DOCKER_HOST forms', () => {
    expect(dockerTarget('unix:///var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerTarget('tcp://10.0.0.1:2376')).toEqual({ host: '10.0.0.1', port: 2376 });
    expect(dockerTarget(undefined)).toEqual({ socketPath: '/var/run/docker.sock' });
  });

  it('gets JSON and reports an API error with the path and status', async () => {
    nock(BASE)
      .get('/v1.41/containers/json')
      .reply(200, [{ Id: 'x' }]);
    expect(await engine.get('/containers/json')).toEqual([{ Id: 'x' }]);
    nock(BASE).get('/v1.41/containers/json').reply(500, 'boom');
    await expect(engine.get('/containers/json')).rejects.toThrow(/docker API \/containers\/json: HTTP 500/);
  });

  it('lists at start, follows events (start, rename, disconnect, destroy), and only serves our networks', async () => {
    const events = fakeEngine(BASE, ['c1', 'c9']);
    nock(BASE)
      .get('/v1.41/containers/c1/json')
      .reply(200, inspect('c1aaaaaaaaaaaa', 'web', '10.1.0.2'));
    nock(BASE)
      .get('/v1.41/containers/c9/json')
      .reply(200, inspect('c9aaaaaaaaaaaa', 'other', '172.17.0.5', 'bridge', 'nbridge'));
    sync = new DockerNameSync({
      zone: 'mynet',
      engine,
      log: silentLog,
      isOurNetwork: (id) => id === 'n1',
      backoff: { firstMs: 10, maxMs: 50 },
    });
    sync.start();
    await waitFor(() => a(sync!, 'web.front.mynet').length > 0);
    expect(a(sync, 'web.front.mynet')).toEqual(['10.1.0.2']);
    expect(sync.table().lookup('other.bridge.mynet')).toEqual({ kind: 'nxdomain' });

    nock(BASE)
      .get('/v1.41/containers/c2/json')
      .reply(200, inspect('c2aaaaaaaaaaaa', 'db', '10.1.0.3'));
    events.push(event({ Type: 'container', Action: 'start', Actor: { ID: 'c2' } }));
    await waitFor(() => a(sync!, 'db.front.mynet').length > 0);

    nock(BASE)
      .get('/v1.41/containers/c2/json')
      .reply(200, inspect('c2aaaaaaaaaaaa', 'database', '10.1.0.3'));
    events.push(event({ Type: 'container', Action: 'rename', Actor: { ID: 'c2' } }));
    await waitFor(() => a(sync!, 'database.front.mynet').length > 0);
    expect(sync.table().lookup('db.front.mynet')).toEqual({ kind: 'nxdomain' });

    nock(BASE)
      .get('/v1.41/containers/c1aaaaaaaaaaaa/json')
      .reply(200, { ...inspect('c1aaaaaaaaaaaa', 'web', ''), NetworkSettings: { Networks: {} } });
    events.push(event({ Type: 'network', Action: 'disconnect', Actor: { ID: 'n1', Attributes: { container: 'c1aaaaaaaaaaaa' } } }));
    await waitFor(() => a(sync!, 'web.front.mynet').length === 0);

    events.push(event({ Type: 'container', Action: 'destroy', Actor: { ID: 'c2aaaaaaaaaaaa' } }));
    await waitFor(() => sync!.table().lookup('database.front.mynet').kind === 'nxdomain');
  });

  it('keeps serving when the stream drops and the API fails, then catches up after reconnecting', async () => {
    const first = fakeEngine(BASE, ['c1']);
    nock(BASE)
      .get('/v1.41/containers/c1/json')
      .reply(200, inspect('c1aaaaaaaaaaaa', 'web', '10.1.0.2'));
    sync = new DockerNameSync({ zone: 'mynet', engine, log: silentLog, isOurNetwork: () => true, backoff: { firstMs: 10, maxMs: 50 } });
    sync.start();
    await waitFor(() => a(sync!, 'web.front.mynet').length > 0);
    // The API goes away: events and listing fail for a while.
    const down = nock(BASE)
      .get(/\/v1\.41\/events.*/)
      .times(2)
      .reply(500, 'down');
    nock(BASE).get('/v1.41/containers/json').times(2).reply(500, 'down');
    first.push(null); // the stream drops
    await waitFor(() => down.isDone()); // it tried the events again twice, and failed
    expect(a(sync, 'web.front.mynet')).toEqual(['10.1.0.2']); // still served
    // It comes back with a new container.
    nock(BASE)
      .get(/\/v1\.41\/events.*/)
      .reply(200, () => new Readable({ read() {} }));
    nock(BASE)
      .get('/v1.41/containers/json')
      .reply(200, [{ Id: 'c1' }, { Id: 'c3' }]);
    nock(BASE)
      .get('/v1.41/containers/c1/json')
      .reply(200, inspect('c1aaaaaaaaaaaa', 'web', '10.1.0.2'));
    nock(BASE)
      .get('/v1.41/containers/c3/json')
      .reply(200, inspect('c3aaaaaaaaaaaa', 'cache', '10.1.0.4'));
    await waitFor(() => a(sync!, 'cache.front.mynet').length > 0, 5000);
  });
});
