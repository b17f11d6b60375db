/**
 * Docker's names for what mynet knows by id (networks, endpoints → containers), asked of the
 * Engine API only when an operator asks (`mynet status`, `mynet ports`), never on a plugin
 * request path: a plugin that waits on dockerd can deadlock with it.
 */
import { Engine } from '../dns/engine.js';

export interface DockerNames {
  readonly networks: ReadonlyMap<string, string>;
  /** EndpointID → container name. */
  readonly endpoints: ReadonlyMap<string, string>;
}

export const NO_NAMES: DockerNames = { networks: new Map(), endpoints: new Map() };

export async function dockerNames(engine: Engine = new Engine(undefined, 2000)): Promise<DockerNames> {
  const [nets, containers] = await Promise.all([
    engine.get<{ Id: string; Name: string }[]>('/networks'),
    engine.get<{ Names: string[]; NetworkSettings?: { Networks?: Record<string, { EndpointID?: string }> } }[]>('/containers/json'),
  ]);
  const endpoints = new Map<string, string>();
  for (const c of containers) {
    const name = (c.Names[0] ?? '').replace(/^\//, '');
    for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) if (n.EndpointID) endpoints.set(n.EndpointID, name);
  }
  return { networks: new Map(nets.map((n) => [n.Id, n.Name])), endpoints };
}
