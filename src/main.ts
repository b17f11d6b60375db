/**
 * Composition root: load settings and state, listen (within a second, before any slow work),
 * then restore the host from state and keep reconciling it (the doctor's safe repairs every
 * MYNET_RECONCILE_INTERVAL). SIGTERM/SIGINT: stop accepting, finish what is in flight, save,
 * remove the sockets, exit 0.
 */
import { bareAddress } from './rules/address.js';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { rm } from 'node:fs/promises';
import { NO_NAMES, dockerNames } from './admin/docker-names.js';
import { createAdminApp } from './admin/server.js';
import { drainer } from './http/drain.js';
import { kernelSnapshot, nftCounters } from './host/kernel-snapshot.js';
import { policyDrops } from './driver/policy.js';
import type { Metrics } from './metrics.js';
import { Engine, namesSource } from './dns/engine.js';
import { type DnsServer, startDnsServer } from './dns/server.js';
import { DockerNameSync, endpointLabelsSeen } from './dns/sync.js';
import { loadConfig } from './config.js';
import { messageOf } from './errors.js';
import { Background } from './host/background.js';
import { ExecaExecutor } from './host/execa-executor.js';
import { readHostPorts } from './host/listeners.js';
import { PortHolder } from './host/port-holder.js';
import { heldSockets } from './plan/ports.js';
import { hostPrefixes, linkOwner, ourLinks } from './host/probe.js';
import { createApp } from './http/app.js';
import { loadSchemas } from './protocol/schemas.js';
import { routes } from './http/routes.js';
import { listenUnix } from './http/socket.js';
import { createLogger } from './logger.js';
import { Plugin } from './plugin.js';
import { FileStore } from './store/file-store.js';
import { startCluster, type Cluster } from './multihost/start.js';
import { planeView } from './multihost/plane.js';
import type { DnsNames } from './multihost/dns-names.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const store = new FileStore({ dir: config.stateDir, log });
  const state = await store.load();
  // prom-client costs ~40 ms to load: it is loaded once the socket listens, and what happens
  // before that (the first requests, the first host commands) is counted when it is there.
  const loaded: { metrics?: Metrics; early: ((m: Metrics) => void)[] } = { early: [] };
  const count = (f: (m: Metrics) => void): void => {
    if (loaded.metrics) f(loaded.metrics);
    else loaded.early.push(f);
  };
  const execOptions = {
    timeoutMs: config.commandTimeoutMs,
    procSysNet: config.procSysNet,
    persistent: true,
    onCommand: (argv: readonly string[], ms: number, ok: boolean) => count((m) => m.command(argv, ms, ok)),
    onSpawn: (command: string) => count((m) => m.processes.inc({ command })),
  };
  // Published host ports are held with bound sockets while published (host/port-holder.ts).
  const holder = new PortHolder();
  // Background deletes get their own ip process, so they never queue before a request's commands.
  const laterExec = new ExecaExecutor(execOptions);
  const background = new Background(laterExec, () => count((m) => m.backgroundFailures.inc()));
  // Retired veths stay on their bridge until the reap: a bridge they fill waits for it.
  const exec = new ExecaExecutor({ ...execOptions, holder, whenBridgeFull: () => background.idle() });
  // The cluster (issue 17): only with MYNET_ETCD_ENDPOINTS. Its kernel programming has its own
  // executor, so remote endpoints never wait behind a request's commands (nor the reverse).
  const names: { sync?: DockerNameSync } = {};
  const nameIndex = new Map<string, DnsNames>();
  const cluster: Cluster | undefined = await startCluster({
    env: process.env,
    stateDir: config.stateDir,
    log,
    exec: new ExecaExecutor(execOptions),
    state: () => state,
    nameOf: (e) => (e.address ? nameIndex.get(`${e.networkId} ${bareAddress(e.address)}`) : undefined),
    onRemoteChange: () => names.sync?.refresh(),
    onLag: (sec) => count((m) => m.clusterWatchLag.observe(sec)),
    onRefused: (reason) => count((m) => m.clusterRecordsRefused.inc({ reason })),
    // Called only after the start (the agent starts after the plugin is built).
    departureSettled: (c, l) => plugin.departureSettled(c, l),
    policyChanged: (id, input) =>
      void plugin
        .clusterPolicyChanged(id, input, log)
        .catch((err: unknown) => log.error({ err }, 'cluster: a network policy change failed')),
  });
  const plugin: Plugin = new Plugin({
    state,
    store,
    exec,
    linkOwner: (name, l) => linkOwner(exec, name, l),
    ourLinks: (l) => ourLinks(exec, l),
    ipamEnv: () => ({ defaultPools: config.defaultPools, hostPrefixes: hostPrefixes(log) }),
    hostPorts: readHostPorts,
    holdsPorts: true,
    snapshot: (l) => kernelSnapshot(exec, l),
    onDifferences: (found) => count((m) => m.doctor(found)),
    background,
    ...(cluster && {
      cluster: cluster.agent,
      dataPlane: () => planeView(cluster.agent.planes),
      underlay: () => cluster.agent.node.address,
      clusterFindings: (repair, l) => cluster.agent.findings(repair, l),
    }),
  });
  const ensureHook = (l = log): void => {
    plugin.ensureHook(l).catch((err: unknown) => l.error({ err }, 'cannot ensure the FORWARD hook'));
  };
  // Unknown paths share one label, so a client cannot grow the metrics without bound.
  const knownRoutes = new Set(routes.map((r) => r.path));
  const app = createApp({
    plugin,
    log,
    onRegister: ensureHook,
    onRequest: (route, ok, ms) => count((m) => m.request(knownRoutes.has(route) ? route : 'unknown', ok, ms)),
  });
  const server = createServer(app);
  const stopServer = drainer(server);
  await listenUnix(server, config.socket);
  void loadSchemas().catch((err: unknown) => log.error({ err }, 'cannot load the request schemas'));
  const metrics = new (await import('./metrics.js')).Metrics(() => state);
  if (cluster)
    metrics.cluster({
      etcdUp: () => cluster.agent.etcdUp,
      remoteEndpoints: () => cluster.agent.remoteEndpoints(),
      lostAddresses: () => cluster.agent.lostAddresses(),
    });
  if (cluster)
    metrics.wireguard(() =>
      cluster.agent.wireguardPeers().catch((err: unknown) => {
        // A scrape without the ages rather than a failed scrape: the other metrics still count.
        log.warn({ err: messageOf(err) }, 'wireguard: reading the peers for metrics failed');
        return [];
      }),
    );
  metrics.policyDrops(async () =>
    policyDrops(
      state,
      await nftCounters(exec, log).catch((err: unknown) => {
        // A scrape without the drops rather than a failed scrape: the other metrics still count.
        log.warn({ err: messageOf(err) }, 'policy: reading the drop counters for metrics failed');
        return new Map<string, number>();
      }),
    ),
  );
  loaded.metrics = metrics;
  for (const f of loaded.early.splice(0)) f(metrics);
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  // The Docker socket is optional (it is root on the host): without it, no names at all.
  const source = await namesSource();
  if (!source.on) log.warn({ why: source.why }, 'docker names off: no host DNS names, no container names in mynet status');
  const admin = createServer(
    createAdminApp({
      plugin,
      metrics,
      log: log.child({ admin: true }),
      version,
      names: () => (source.on ? dockerNames() : Promise.resolve(NO_NAMES)),
      namesSource: source,
      ...(cluster && { cluster: cluster.agent }),
    }),
  );
  await listenUnix(admin, config.adminSocket, 0o600);
  log.info(
    {
      socket: config.socket,
      adminSocket: config.adminSocket,
      stateDir: config.stateDir,
      networks: state.networks.size,
      endpoints: state.endpoints.size,
      version,
    },
    'listening',
  );

  // Names: from the Docker API, in the background (never on a request path), served over DNS.
  const sync = new DockerNameSync({
    zone: config.dnsZone,
    engine: new Engine(),
    log,
    isOurNetwork: (id) => state.networks.get(id)?.options.dns === true,
    // A cluster network's containers answer by bare name too, from every host (issue 23).
    clusterOf: (id) => state.networks.get(id)?.cluster?.name,
    // Other hosts' endpoints of cluster networks: `<name>.<cluster>.<zone>` on every host.
    ...(cluster && { extra: () => cluster.agent.remoteNames() }),
    onChange: () => {
      // Container labels for network policy (issue 25), here and not on a request's path.
      plugin
        .relabel(endpointLabelsSeen(sync.containerList()), log)
        .catch((err: unknown) => log.error({ err }, 'policy: saving container labels failed; the next docker event tries again'));
      if (!cluster) return;
      nameIndex.clear();
      for (const c of sync.containerList())
        for (const n of c.networks) if (n.ipv4) nameIndex.set(`${n.networkId} ${n.ipv4}`, { name: c.name, aliases: n.aliases });
      cluster.agent.namesChanged();
    },
  });
  names.sync = sync;
  let dns: DnsServer | undefined;
  // Followed whenever the socket is on: container labels count for policy without DNS too.
  if (source.on) sync.start();
  if (config.dnsListen && source.on) {
    dns = await startDnsServer({
      listen: config.dnsListen,
      table: () => sync.table(),
      log,
      onQuery: (a) => count((m) => m.dnsQueries.inc({ answer: a })),
    }).catch((err: unknown) => {
      // Names are a convenience; networking must not stop because port 53 is taken.
      log.error({ err, listen: config.dnsListen }, 'dns: cannot listen; names will not be served');
      return undefined;
    });
  }

  const reconcile = (): void => {
    plugin.doctor(log, 'safe').catch((err: unknown) => log.error({ err }, 'reconcile failed'));
  };
  plugin
    .restore(log)
    // The data plane is rebuilt from the journal first; then the cluster follows etcd (when it answers).
    .then(() => cluster?.agent.start())
    .then(() => holder.holdAll(() => [...state.endpoints.values()].flatMap((e) => heldSockets(e, e.ports)), log))
    .then(reconcile)
    .catch((err: unknown) => log.error({ err }, 'restore failed'));
  const timer = setInterval(reconcile, config.reconcileIntervalS * 1000);
  timer.unref();

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    clearInterval(timer);
    // Which step of the shutdown is under way, so that a forced exit names the one that hung
    // (requests still in flight, or the cluster's lease and watches, or saving the state).
    let phase = 'waiting for in-flight requests';
    const force = setTimeout(() => {
      log.error({ phase }, `shutdown did not finish within 8 s (${phase}); exiting`);
      process.exit(1);
    }, 8000);
    admin.close();
    admin.closeAllConnections();
    sync.stop();
    void dns?.close();
    stopServer(() => {
      void (async () => {
        try {
          phase = 'draining background work';
          await plugin.drain();
          phase = 'stopping the cluster (watches, presence lease, etcd client)';
          await cluster?.stop();
          exec.close();
          laterExec.close();
          phase = 'saving the state';
          await store.compact(state);
          await store.close();
          await rm(config.socket, { force: true });
          await rm(config.adminSocket, { force: true });
          log.info('stopped');
          clearTimeout(force);
          process.exit(0);
        } catch (err) {
          log.error({ err }, 'saving state at shutdown failed');
          process.exit(1);
        }
      })();
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  // Before the logger exists (bad settings) or when state cannot be loaded: say which and why.
  process.stderr.write(`mynet: cannot start: ${messageOf(err)}\n`);
  process.exit(1);
});
