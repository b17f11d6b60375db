/**
 * Stopping an HTTP server without cutting an answer short and without waiting on a client.
 * `server.close()` waits for every connection to end, and a connection that has not sent a
 * request yet (dockerd opens them ahead, a hostile client may never write) is not "idle" to
 * Node, so closeIdleConnections() leaves it: the shutdown then waited until main.ts's 8 s limit
 * and exited 1, before the cluster's lease was revoked and the state saved. Here the requests in
 * flight are counted, and once none is, every connection left is closed.
 */
import type { Server } from 'node:http';

/** Call at creation (it must see every request); the function it returns stops the server. */
export function drainer(server: Server): (done: () => void) => void {
  let inFlight = 0;
  let stopping = false;
  server.on('request', (_req, res) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (stopping && inFlight === 0) server.closeAllConnections();
    });
  });
  return (done) => {
    stopping = true;
    server.close(() => done());
    if (inFlight === 0) server.closeAllConnections();
    else server.closeIdleConnections();
  };
}
