/**
 * Prometheus metrics, served on the admin socket at /metrics. Counts and durations are recorded
 * where things happen (http/app.ts, the executor, the DNS server, the doctor); gauges of what
 * exists are read from the state when scraped.
 */
import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StateView } from './driver/state.js';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mynet_requests_total',
    help: 'Plugin requests by route and outcome',
    labelNames: ['route', 'outcome'],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'mynet_request_duration_seconds',
    help: 'Plugin request duration by route',
    labelNames: ['route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  readonly commands = new Counter({
    name: 'mynet_host_commands_total',
    help: 'Host commands (processes) by program and outcome',
    labelNames: ['command', 'outcome'],
    registers: [this.registry],
  });
  readonly commandSeconds = new Histogram({
    name: 'mynet_host_command_duration_seconds',
    help: 'Host command duration by program',
    labelNames: ['command'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    registers: [this.registry],
  });
  readonly processes = new Counter({
    name: 'mynet_host_processes_total',
    help: 'Processes started for host commands (one-shot and the long-running ip/nft ones), by program',
    labelNames: ['command'],
    registers: [this.registry],
  });
  readonly backgroundFailures = new Counter({
    name: 'mynet_background_failures_total',
    help: 'Steps run after the answer (veth deletes, conntrack flushes) that failed; the doctor reports what they left',
    registers: [this.registry],
  });
  readonly dnsQueries = new Counter({
    name: 'mynet_dns_queries_total',
    help: 'DNS queries by answer',
    labelNames: ['answer'],
    registers: [this.registry],
  });
  readonly doctorDifferences = new Counter({
    name: 'mynet_doctor_differences_total',
    help: 'Differences between state and kernel found by the doctor, by kind, counted at every check',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  /** What the last check found (before repairs): the one to alert on, since it falls back to 0. */
  readonly doctorLast = new Gauge({
    name: 'mynet_doctor_differences',
    help: 'Differences between state and kernel found by the last doctor check (before repairs), by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  /**
   * The heap still in use right after the last full (mark-compact) collection: what the plugin
   * keeps. RSS and heap size follow V8's sizing of its heap to the load and swing by tens of per
   * cent; this is the figure a leak makes grow.
   */
  readonly liveHeap = new Gauge({
    name: 'mynet_process_heap_live_bytes',
    help: 'V8 heap in use right after the last full garbage collection (0 before the first)',
    registers: [this.registry],
  });
  private readonly gcObserver = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    if (major) this.liveHeap.set(getHeapStatistics().used_heap_size);
  });

  constructor(state: () => StateView) {
    collectDefaultMetrics({ register: this.registry, prefix: 'mynet_process_' });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    new Gauge({
      name: 'mynet_networks',
      help: 'Networks in state',
      registers: [this.registry],
      collect() {
        this.set(state().networks.size);
      },
    });
    new Gauge({
      name: 'mynet_endpoints',
      help: 'Endpoints in state',
      registers: [this.registry],
      collect() {
        this.set(state().endpoints.size);
      },
    });
    new Gauge({
      name: 'mynet_published_ports',
      help: 'Published port bindings in force',
      registers: [this.registry],
      collect() {
        let n = 0;
        for (const e of state().endpoints.values()) n += e.ports.length;
        this.set(n);
      },
    });
  }

  /**
   * Seconds from an endpoint record's write on its host (its updatedAt) to its entries in this
   * host's kernel: the cross-host convergence time (host clocks must agree, as NTP makes them).
   */
  readonly clusterWatchLag = new Histogram({
    name: 'mynet_cluster_watch_lag_seconds',
    help: 'Time from an endpoint record written in etcd by its host to its forwarding entries programmed here',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** Endpoint records of other hosts that parse but are not believed (multihost/trust.ts), by reason. */
  readonly clusterRecordsRefused = new Counter({
    name: 'mynet_cluster_records_refused_total',
    help: "Endpoint records in etcd not programmed because they are not believed (another node's claimed address, this host's own address or MAC, ...), by reason",
    labelNames: ['reason'],
    registers: [this.registry],
  });

  /** The cluster's gauges (issue 17), registered only when a cluster store is configured. */
  cluster(source: { etcdUp(): boolean; remoteEndpoints(): number; lostAddresses(): number }): void {
    new Gauge({
      name: 'mynet_cluster_addresses_lost',
      help: 'Addresses this host uses that another node claims in etcd (this host was forgotten while away): not published from here until an operator decides',
      registers: [this.registry],
      collect() {
        this.set(source.lostAddresses());
      },
    });
    new Gauge({
      name: 'mynet_cluster_etcd_up',
      help: '1 when the last etcd call or watch succeeded, 0 when etcd did not answer',
      registers: [this.registry],
      collect() {
        this.set(source.etcdUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mynet_cluster_remote_endpoints',
      help: "Endpoints of other hosts programmed on this host's VXLAN devices",
      registers: [this.registry],
      collect() {
        this.set(source.remoteEndpoints());
      },
    });
  }

  /**
   * Seconds since each WireGuard peer's last handshake (issue 24), read from `wg` at each scrape:
   * WireGuard re-handshakes every 2 minutes while traffic flows, so an age well past that is a
   * peer that does not answer. A peer with no handshake yet is left out (no age to give).
   */
  wireguard(peers: () => Promise<readonly { node: string; lastHandshake: string | undefined }[]>, now = (): number => Date.now()): void {
    new Gauge({
      name: 'mynet_wireguard_handshake_age_seconds',
      help: "Seconds since the last WireGuard handshake with each peer of this host's encrypted cluster networks",
      labelNames: ['peer'],
      registers: [this.registry],
      async collect() {
        const list = await peers();
        this.reset();
        for (const p of list) if (p.lastHandshake) this.set({ peer: p.node }, Math.max(0, (now() - Date.parse(p.lastHandshake)) / 1000));
      },
    });
  }

  /**
   * Packets each network policy dropped (issue 25), read from the kernel's counters at each
   * scrape: `read` gives policy → packets. A counter, though set rather than counted here: the
   * kernel counts, and a policy removed and applied again starts from 0 (a counter reset).
   */
  policyDrops(read: () => Promise<ReadonlyMap<string, number>>): void {
    new Counter({
      name: 'mynet_policy_drops_total',
      help: 'Packets dropped by each network policy (its counter in the kernel)',
      labelNames: ['policy'],
      registers: [this.registry],
      async collect() {
        const drops = await read();
        this.reset();
        for (const [policy, n] of drops) this.inc({ policy }, n);
      },
    });
  }

  /** Records one doctor check: every kind seen so far is set, to 0 when this check found none. */
  doctor(found: readonly { kind: string }[]): void {
    const byKind = new Map<string, number>();
    for (const d of found) byKind.set(d.kind, (byKind.get(d.kind) ?? 0) + 1);
    for (const [kind, n] of byKind) this.doctorDifferences.inc({ kind }, n);
    for (const kind of this.doctorKinds) if (!byKind.has(kind)) this.doctorLast.set({ kind }, 0);
    for (const [kind, n] of byKind) {
      this.doctorKinds.add(kind);
      this.doctorLast.set({ kind }, n);
    }
  }

  private readonly doctorKinds = new Set<string>();

  request(route: string, ok: boolean, ms: number): void {
    this.requests.inc({ route, outcome: ok ? 'ok' : 'error' });
    this.requestSeconds.observe({ route }, ms / 1000);
  }

  command(argv: readonly string[], ms: number, ok: boolean): void {
    const command = argv[0] === 'ip' && argv[1] === '-batch' ? 'ip-batch' : (argv[0] ?? 'unknown');
    this.commands.inc({ command, outcome: ok ? 'ok' : 'error' });
    this.commandSeconds.observe({ command }, ms / 1000);
  }
}
