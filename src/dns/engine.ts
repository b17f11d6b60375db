/**
 * A small Docker Engine API client (node http): JSON GETs and the events stream. The target is
 * DOCKER_HOST (unix:///path or tcp://host:port), default the local socket. Used only off the
 * plugin's request path: a plugin that waits on dockerd can deadlock with it at boot.
 */
import { stat } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:http';

export const API = '/v1.41';

export interface Target {
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: number;
}

export function dockerTarget(dockerHost: string | undefined = process.env.DOCKER_HOST): Target {
  const h = dockerHost || 'unix:///var/run/docker.sock';
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) };
  const u = new URL(h.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375) };
}

/** Whether mynet can have Docker's names (DNS, `mynet status`), and if not, why. */
export type NamesSource =
  { readonly on: true; readonly socket: string } | { readonly on: false; readonly socket: string; readonly why: string };

/**
 * The Docker API socket is optional: it is root on the host, and mynet uses it only to read
 * container names. The managed plugin mounts /dev/null in its place unless the operator sets
 * `docker.source`; a path that exists and is no socket means "off". A missing socket is not
 * "off": dockerd may simply not be up yet (the legacy plugin starts before it), so the sync
 * retries.
 */
export async function namesSource(target: Target = dockerTarget()): Promise<NamesSource> {
  if (!target.socketPath) return { on: true, socket: `tcp://${target.host}:${target.port}` };
  const socket = target.socketPath;
  try {
    const s = await stat(socket);
    if (s.isSocket()) return { on: true, socket };
    return {
      on: false,
      socket,
      why: `${socket} is not a socket (managed plugin: docker plugin set <plugin> docker.source=/var/run/docker.sock turns names on)`,
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { on: true, socket };
    return { on: false, socket, why: `cannot use ${socket}: ${(err as Error).message}` };
  }
}

export class EngineError extends Error {
  constructor(
    readonly path: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(`docker API ${path}: ${message}`);
    this.name = 'EngineError';
  }
}

export class Engine {
  constructor(
    readonly target: Target = dockerTarget(),
    private readonly timeoutMs = 5000,
  ) {}

  private opts(path: string): RequestOptions {
    return { ...this.target, path: `${API}${path}`, method: 'GET', headers: { Host: 'docker' } };
  }

  get<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const req = request({ ...this.opts(path), timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new EngineError(path, res.statusCode, `HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          try {
            resolve(JSON.parse(text) as T);
          } catch (err) {
            reject(new EngineError(path, 200, `invalid JSON (${(err as Error).message})`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new EngineError(path, undefined, `no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof EngineError ? err : new EngineError(path, undefined, err.message)));
      req.end();
    });
  }

  /**
   * Streams newline-delimited JSON objects (GET /events). Resolves when the stream ends, rejects
   * when it cannot be opened or breaks; `signal` ends it.
   */
  stream(path: string, onObject: (o: unknown) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({ ...this.opts(path), signal }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new EngineError(path, res.statusCode, `HTTP ${res.statusCode}`));
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) {
              try {
                onObject(JSON.parse(line));
              } catch (err) {
                return req.destroy(new EngineError(path, 200, `invalid event (${(err as Error).message})`));
              }
            }
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', (err) => reject(signal.aborted ? new EngineError(path, undefined, 'stopped') : err));
      req.end();
    });
  }
}
