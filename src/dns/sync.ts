/**
 * Keeps the NameTable current from the Docker Engine API: a full listing at start and after every
 * reconnect, then the events stream (container start/die/destroy/rename, network
 * connect/disconnect), re-reading only the container an event is about. Each container's
 * `mynet.label.*` labels come with it (issue 25: network policy reads them per endpoint, through
 * Plugin.relabel; checked here, bad ones ignored and logged). When the API is
 * unreachable it keeps serving what it knows and retries with backoff. start() returns at once:
 * nothing here ever delays the plugin's socket or its answers to dockerd.
 */
import type { Logger } from 'pino';
import { Engine, EngineError } from './engine.js';
import { type ContainerInfo, NameTable } from './records.js';
import { type Labels, labelsFromContainer } from '../rules/label.js';

interface InspectNet {
  NetworkID?: string;
  EndpointID?: string;
  IPAddress?: string;
  GlobalIPv6Address?: string;
  Aliases?: string[] | null;
}
interface Inspect {
  Id: string;
  Name: string;
  State?: { Running?: boolean };
  Config?: { Labels?: Record<string, string> | null };
  NetworkSettings?: { Networks?: Record<string, InspectNet> };
}
interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export interface SyncOptions {
  readonly zone: string;
  readonly engine: Engine;
  readonly log: Logger;
  /** Networks whose names we serve (mynet networks with mynet.dns on). */
  readonly isOurNetwork: (networkId: string) => boolean;
  /** The cluster name of a cluster network (its containers answer by bare name, records.ts). */
  readonly clusterOf?: (networkId: string) => string | undefined;
  readonly backoff?: { firstMs: number; maxMs: number };
  readonly onChange?: (t: NameTable) => void;
  /**
   * Names that do not come from this host's Docker: a cluster network's endpoints on other hosts
   * (multihost/), each under this host's network id, so that it is served under this host's name
   * of the network (records.ts).
   */
  readonly extra?: () => readonly ContainerInfo[];
}

export function containerInfo(c: Inspect, isOurNetwork: (id: string) => boolean, labels?: Labels): ContainerInfo {
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    ...(labels && Object.keys(labels).length > 0 && { labels }),
    networks: Object.entries(c.NetworkSettings?.Networks ?? {}).flatMap(([name, n]) =>
      n.NetworkID && isOurNetwork(n.NetworkID)
        ? [
            {
              networkId: n.NetworkID,
              networkName: name,
              ...(n.IPAddress ? { ipv4: n.IPAddress } : {}),
              ...(n.GlobalIPv6Address ? { ipv6: n.GlobalIPv6Address } : {}),
              ...(n.EndpointID ? { endpointId: n.EndpointID } : {}),
              // dockerd lists the short container id among the aliases; it is no name.
              aliases: (n.Aliases ?? []).filter((a) => !c.Id.startsWith(a)),
            },
          ]
        : [],
    ),
  };
}

export class DockerNameSync {
  private readonly containers = new Map<string, ContainerInfo>();
  /** Containers whose labels were refused, with what was said (logged once): bounded by `containers`. */
  private readonly refusedLabels = new Map<string, string>();
  private current: NameTable;
  private abort = new AbortController();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;

  constructor(private readonly o: SyncOptions) {
    this.current = new NameTable(o.zone, []);
    this.delay = o.backoff?.firstMs ?? 200;
  }

  table(): NameTable {
    return this.current;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }

  /** The containers Docker reports on this host (with all their networks). */
  containerList(): readonly ContainerInfo[] {
    return [...this.containers.values()];
  }

  /** Rebuilds the table (e.g. when a network's DNS setting or existence changed). */
  refresh(): void {
    this.rebuild();
  }

  private rebuild(): void {
    const clusterOf = (id: string): { cluster?: string } => {
      const cluster = this.o.clusterOf?.(id);
      return cluster === undefined ? {} : { cluster };
    };
    const infos: ContainerInfo[] = [...this.containers.values()].map((c) => ({
      ...c,
      networks: c.networks.filter((n) => this.o.isOurNetwork(n.networkId)).map((n) => ({ ...n, ...clusterOf(n.networkId) })),
    }));
    this.current = new NameTable(this.o.zone, infos, this.o.extra?.() ?? []);
    this.o.onChange?.(this.current);
  }

  private async inspect(id: string): Promise<void> {
    try {
      const c = await this.o.engine.get<Inspect>(`/containers/${encodeURIComponent(id)}/json`);
      if (c.State?.Running === false) this.forget(c.Id);
      else
        this.containers.set(
          c.Id,
          containerInfo(c, () => true, this.labelsOf(c)),
        );
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) this.forget(id);
      else throw err;
    }
  }

  private forget(id: string): void {
    this.containers.delete(id);
    this.refusedLabels.delete(id);
  }

  /**
   * The container's labels for network policy. Ignored ones are logged once per container and
   * set of problems (every event about a container inspects it again), never passed on.
   */
  private labelsOf(c: Inspect): Labels {
    const { labels, refused } = labelsFromContainer(c.Config?.Labels);
    const said = refused.join('\n');
    if (refused.length > 0 && this.refusedLabels.get(c.Id) !== said)
      this.o.log.warn({ container: c.Name.slice(0, 80), refused }, 'policy: container labels ignored (they do not check)');
    if (refused.length > 0) this.refusedLabels.set(c.Id, said);
    else this.refusedLabels.delete(c.Id);
    return labels;
  }

  private async listAll(): Promise<void> {
    const list = await this.o.engine.get<{ Id: string }[]>('/containers/json');
    this.containers.clear();
    for (const c of list) await this.inspect(c.Id);
    for (const id of this.refusedLabels.keys()) if (!this.containers.has(id)) this.refusedLabels.delete(id);
    this.rebuild();
  }

  private async onEvent(e: DockerEvent): Promise<void> {
    const id = e.Type === 'network' ? e.Actor?.Attributes?.container : e.Actor?.ID;
    if (!id) return;
    if (e.Type === 'container' && e.Action === 'destroy') this.forget(id);
    else await this.inspect(id);
    this.rebuild();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.abort = new AbortController();
      // Subscribe first, then list, so that nothing between the two is missed.
      let queue = Promise.resolve();
      const since = Math.floor(Date.now() / 1000);
      const filters = encodeURIComponent(JSON.stringify({ type: ['container', 'network'] }));
      // The stream's outcome as a value, so a failure while we are still listing is not an
      // unhandled rejection.
      const streaming: Promise<unknown> = this.o.engine
        .stream(
          `/events?since=${since}&filters=${filters}`,
          (o) => {
            queue = queue
              .then(() => this.onEvent(o as DockerEvent))
              .catch((err: unknown) => this.o.log.warn({ err }, 'dns: cannot follow a docker event'));
          },
          this.abort.signal,
        )
        .then(
          () => undefined,
          (err: unknown) => err ?? new Error('events stream failed'),
        );
      try {
        await this.listAll();
        this.delay = this.o.backoff?.firstMs ?? 200;
        this.o.log.info({ containers: this.containers.size, names: this.current.size }, 'dns: synced with docker');
        const failure = await streaming;
        if (failure) throw failure instanceof Error ? failure : new Error('docker events stream failed');
        if (!this.stopped) this.o.log.warn('dns: docker events stream ended; reconnecting');
      } catch (err) {
        // Close the stream too (a failed listing leaves it open) and wait for it to settle.
        this.abort.abort();
        await streaming;
        if (this.stopped) return;
        this.o.log.warn({ err: (err as Error).message, retryMs: this.delay }, 'dns: docker API unavailable; serving what is known');
      }
      if (this.stopped) return;
      await new Promise<void>((r) => (this.timer = setTimeout(r, this.delay)));
      this.delay = Math.min(this.delay * 2, this.o.backoff?.maxMs ?? 10_000);
    }
  }
}

/**
 * Each endpoint's container labels, by Docker's endpoint id, as the follow last saw them (those
 * with no label too, as none): what Plugin.relabel compares with the records.
 */
export function endpointLabelsSeen(containers: readonly ContainerInfo[]): Map<string, Labels> {
  const out = new Map<string, Labels>();
  for (const c of containers) for (const n of c.networks) if (n.endpointId) out.set(n.endpointId, c.labels ?? {});
  return out;
}
