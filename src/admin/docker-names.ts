/**
 * Docker's names for what mynet knows by id (networks, endpoints → containers), asked of the
 * Engine API only when an operator asks (`mynet status`, `mynet ports`), never on a plugin
 * request path: a plugin that waits on dockerd can deadlock with it.
 */
import { request } from 'node:http';

export interface DockerNames {
  readonly networks: ReadonlyMap<string, string>;
  /** EndpointID → container name. */
  readonly endpoints: ReadonlyMap<string, string>;
}

export const NO_NAMES: DockerNames = { networks: new Map(), endpoints: new Map() };

/** `DOCKER_HOST` (unix:// or tcp://), default the local socket. */
export function dockerTarget(env: NodeJS.ProcessEnv = process.env): { socketPath?: string; host?: string; port?: number } {
  const h = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) };
  const u = new URL(h.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375) };
}

function get<T>(path: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ ...dockerTarget(), path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`docker API ${path}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`docker API ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function dockerNames(timeoutMs = 2000): Promise<DockerNames> {
  const [nets, containers] = await Promise.all([
    get<{ Id: string; Name: string }[]>('/v1.41/networks', timeoutMs),
    get<{ Names: string[]; NetworkSettings?: { Networks?: Record<string, { EndpointID?: string }> } }[]>('/v1.41/containers/json', timeoutMs),
  ]);
  const endpoints = new Map<string, string>();
  for (const c of containers) {
    const name = (c.Names[0] ?? '').replace(/^\//, '');
    for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) if (n.EndpointID) endpoints.set(n.EndpointID, name);
  }
  return { networks: new Map(nets.map((n) => [n.Id, n.Name])), endpoints };
}
