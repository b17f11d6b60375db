/** Docker's names for mynet's ids, from the Engine API (nock stands in for dockerd). */
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dockerNames } from '../../../src/admin/docker-names.js';
import { Engine, dockerTarget } from '../../../src/dns/engine.js';

const BASE = 'http://127.0.0.1:2375';
const engine = new Engine(dockerTarget('tcp://127.0.0.1:2375'), 1000);

describe('dockerNames', () => {
  beforeEach(() => nock.disableNetConnect());
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('maps network ids to names and endpoint ids to container names, on every network of a container', async () => {
    nock(BASE)
      .get('/v1.41/networks')
      .reply(200, [
        { Id: 'n1', Name: 'front' },
        { Id: 'n2', Name: 'back' },
        { Id: 'b0', Name: 'bridge' },
      ]);
    nock(BASE)
      .get('/v1.41/containers/json')
      .reply(200, [
        { Names: ['/web'], NetworkSettings: { Networks: { front: { EndpointID: 'e1' }, back: { EndpointID: 'e2' } } } },
        { Names: ['/db', '/web/db'], NetworkSettings: { Networks: { back: { EndpointID: 'e3' } } } },
        // Created, not started: no endpoint yet. And one without network settings at all.
        { Names: ['/idle'], NetworkSettings: { Networks: { front: { EndpointID: '' } } } },
        { Names: ['/odd'] },
      ]);
    const n = await dockerNames(engine);
    expect([...n.networks]).toEqual([
      ['n1', 'front'],
      ['n2', 'back'],
      ['b0', 'bridge'],
    ]);
    expect([...n.endpoints]).toEqual([
      ['e1', 'web'],
      ['e2', 'web'],
      ['e3', 'db'],
    ]);
  });

  it('fails when the API fails (the admin server then shows ids only)', async () => {
    nock(BASE).get('/v1.41/networks').reply(500, 'boom');
    nock(BASE).get('/v1.41/containers/json').reply(200, []);
    await expect(dockerNames(engine)).rejects.toThrow(/docker API \/networks: HTTP 500/);
  });
});
