/**
 * A fake Docker Engine API for the unit tier (nock, at `base`): the events stream, which the
 * caller pushes events into, and one listing of the containers `ids`. Each inspect is the test's.
 */
import { Readable } from 'node:stream';
import nock from 'nock';

export function fakeEngine(base: string, ids: readonly string[]): Readable {
  const events = new Readable({ read() {} });
  nock(base)
    .get(/\/v1\.41\/events.*/)
    .reply(200, () => events);
  nock(base)
    .get('/v1.41/containers/json')
    .reply(
      200,
      ids.map((Id) => ({ Id })),
    );
  return events;
}
