/**
 * The plugin protocol over a unix socket, as dockerd speaks it: POST JSON, 200 with the answer
 * or an error status with {"Err": "..."}. One connection per call (no keep-alive), so a killed
 * plugin costs nothing but the calls that were in flight.
 */
import { request } from 'node:http';

/** The plugin answered with an error: `err` is its Err text, what dockerd would show the user. */
export class Refused extends Error {
  constructor(
    readonly path: string,
    readonly status: number,
    readonly err: string,
    readonly ms: number,
  ) {
    super(`${path} ${status} after ${ms.toFixed(0)} ms: ${err}`);
  }
}

/** Nobody answered on the socket (the plugin is down), or it did not answer in time. */
export class NoAnswer extends Error {}

export function post<T = Record<string, unknown>>(socket: string, path: string, body: unknown, timeoutMs = 15_000): Promise<T> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method: 'POST',
        path,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
        timeout: timeoutMs,
      },
      (r) => {
        let t = '';
        r.on('data', (d: Buffer) => (t += d.toString()));
        r.on('end', () => {
          const ms = performance.now() - t0;
          if (r.statusCode === 200) return res((t ? JSON.parse(t) : {}) as T);
          let err = t;
          try {
            const e = (JSON.parse(t) as { Err?: unknown }).Err;
            if (typeof e === 'string') err = e;
          } catch {
            // not JSON: the raw body is the message
          }
          rej(new Refused(path, r.statusCode ?? 0, err, ms));
        });
        r.on('error', (e) => rej(new NoAnswer(`${path}: ${e.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => rej(new NoAnswer(`${path}: ${e.message}`)));
    req.end(data);
  });
}

/** The Refused a call ended with; fails when it succeeded or nobody answered. */
export async function refusal(p: Promise<unknown>): Promise<Refused> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Refused) return err;
    throw err;
  }
  throw new Error('expected the plugin to refuse, and it accepted');
}

/** Whether anything answers 200 on the socket (a socket file left by a killed process does not). */
export function answersOn(socket: string, path: string, method: 'GET' | 'POST' = 'POST'): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ socketPath: socket, method, path, timeout: 2000 }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
      r.on('error', () => res(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
    req.end();
  });
}

/** GET on the admin socket (mynet status and friends), as text. */
export function adminGet(socket: string, path: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: socket, method: 'GET', path, timeout: 5000 }, (r) => {
      let t = '';
      r.on('data', (d: Buffer) => (t += d.toString()));
      r.on('end', () => (r.statusCode === 200 ? res(t) : rej(new Error(`admin ${path} ${r.statusCode}: ${t}`))));
    });
    req.on('timeout', () => req.destroy(new Error('admin: no answer in 5 s')));
    req.on('error', rej);
    req.end();
  });
}

/** POST (or DELETE) on the admin socket (`mynet cluster forget`, `mynet doctor --fix`, `mynet policy`): status and body. */
export function adminPost(
  socket: string,
  path: string,
  body?: string,
  method: 'POST' | 'DELETE' = 'POST',
): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: socket, method, path, timeout: 10_000 }, (r) => {
      let t = '';
      r.on('data', (d: Buffer) => (t += d.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: t }));
    });
    req.on('timeout', () => req.destroy(new Error('admin: no answer in 10 s')));
    req.on('error', rej);
    req.end(body);
  });
}
