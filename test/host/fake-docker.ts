/**
 * The part of the Docker Engine API that mynet's names come from (src/dns/sync.ts), served on a
 * unix socket for a "host" of the host tier, which has no dockerd: GET /containers/json,
 * /containers/<id>/json, /networks and the /events stream. The test tells it what dockerd
 * would know (a container started with its name, address and network; a container gone), and
 * it answers and streams events as dockerd does. Nothing else of the API exists here.
 */
import { rmSync } from 'node:fs';
import { type Server, type ServerResponse, createServer } from 'node:http';

export interface FakeContainer {
  readonly id: string;
  readonly name: string;
  /** network name -> its id and the container's IPv4 (and IPv6) address there */
  readonly networks: Readonly<Record<string, { readonly id: string; readonly ip: string; readonly ip6?: string }>>;
}

export class FakeDocker {
  private readonly containers = new Map<string, FakeContainer>();
  private readonly streams = new Set<ServerResponse>();

  private constructor(
    readonly socket: string,
    private readonly server: Server,
  ) {}

  static async start(socket: string): Promise<FakeDocker> {
    rmSync(socket, { force: true });
    const holder: { self?: FakeDocker } = {};
    const server = createServer((req, res) => holder.self?.handle(req.url ?? '/', res));
    const self = new FakeDocker(socket, server);
    holder.self = self;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    return self;
  }

  /** `docker run --name`: the container is running on these networks. */
  started(c: FakeContainer): void {
    this.containers.set(c.id, c);
    this.emit({ Type: 'container', Action: 'start', Actor: { ID: c.id, Attributes: { name: c.name } } });
  }

  /** `docker rm -f`: gone. */
  destroyed(id: string): void {
    if (!this.containers.delete(id)) return;
    this.emit({ Type: 'container', Action: 'destroy', Actor: { ID: id, Attributes: {} } });
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socket, { force: true });
  }

  private emit(event: object): void {
    const line = `${JSON.stringify({ ...event, time: Math.floor(Date.now() / 1000) })}\n`;
    for (const s of this.streams) s.write(line);
  }

  private handle(url: string, res: ServerResponse): void {
    const path = url.replace(/^\/v[0-9.]+/, '').split('?')[0] as string;
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/events') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    if (path === '/containers/json') {
      return json(
        200,
        [...this.containers.values()].map((c) => ({ Id: c.id, Names: [`/${c.name}`], NetworkSettings: { Networks: {} } })),
      );
    }
    if (path === '/networks') return json(200, []);
    const m = /^\/containers\/([0-9a-f]+)\/json$/.exec(path);
    if (m) {
      const c = this.containers.get(m[1] as string);
      if (!c) return json(404, { message: `No such container: ${m[1]}` });
      const networks = Object.fromEntries(
        Object.entries(c.networks).map(([name, n]) => [
          name,
          { NetworkID: n.id, IPAddress: n.ip, GlobalIPv6Address: n.ip6 ?? '', Aliases: [c.id.slice(0, 12)] },
        ]),
      );
      return json(200, { Id: c.id, Name: `/${c.name}`, State: { Running: true }, NetworkSettings: { Networks: networks } });
    }
    json(404, { message: `page not found: ${path}` });
  }
}
