/**
 * The admin endpoint, on a second, root-only unix socket (MYNET_ADMIN_SOCKET): what the `mynet`
 * command talks to, and /metrics for Prometheus. It reads the plugin's state; only
 * `POST /doctor?fix=all|safe` changes the host, through the plugin's lock.
 */
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { PluginError, invalid, messageOf } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { Plugin } from '../plugin.js';
import type { NamesSource } from '../dns/engine.js';
import { type DockerNames, NO_NAMES } from './docker-names.js';
import { namesView, policiesView, portsView, statusView } from './views.js';
import { POLICY_LIMITS, parsePolicyText } from '../policy/document.js';
import { checkPolicyName } from '../rules/names.js';
import type { ClusterStatus } from '../multihost/agent.js';
import type { DoctorResult } from '../plugin.js';

/** The cluster agent, as the admin endpoint sees it (multihost/agent.ts). */
export interface AdminCluster {
  status(): Promise<ClusterStatus>;
  forget(node: string): Promise<{ addresses: number; endpoints: number }>;
  rotateKey(): Promise<{ readonly publicKey: string }>;
}

export interface AdminDeps {
  readonly plugin: Plugin;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly version: string;
  readonly names: () => Promise<DockerNames>;
  /** Whether Docker's names are on (the Docker socket is optional); shown by `mynet status`. */
  readonly namesSource?: NamesSource;
  readonly cluster?: AdminCluster;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const names = async (): Promise<DockerNames> => {
    try {
      return await deps.names();
    } catch (err) {
      deps.log.debug({ err: messageOf(err) }, 'docker names unavailable');
      return NO_NAMES;
    }
  };
  const wrap =
    (fn: (req: Request) => unknown) =>
    async (req: Request, res: Response): Promise<void> => {
      try {
        res.json(await fn(req));
      } catch (err) {
        // A refusal of what the operator asked (forget a live node) is not the plugin failing.
        if (err instanceof PluginError && ['CONFLICT', 'INVALID_REQUEST', 'NETWORK_NOT_FOUND', 'POLICY_NOT_FOUND'].includes(err.code))
          deps.log.warn({ err: err.message }, 'admin request refused');
        else deps.log.error({ err }, 'admin request failed');
        res.status(500).json({ Err: messageOf(err) });
      }
    };
  /** One reconciler run (the cluster's part included: Plugin.reconcileNow). */
  const doctor = (fix: 'none' | 'safe' | 'all'): Promise<DoctorResult[]> => deps.plugin.doctor(deps.log, fix);
  app.get(
    '/version',
    wrap(() => ({ version: deps.version, node: process.version })),
  );
  app.get(
    '/status',
    wrap(async () => {
      const checks = await doctor('none');
      const cluster = deps.cluster ? await deps.cluster.status() : undefined;
      return {
        networks: statusView(deps.plugin.state, await names()),
        differences: checks.length,
        ...(deps.namesSource ? { names: namesView(deps.namesSource) } : {}),
        ...(cluster ? { cluster } : {}),
      };
    }),
  );
  app.get(
    '/ports',
    wrap(async () => ({ ports: portsView(deps.plugin.state, await names()) })),
  );
  app.get(
    '/doctor',
    wrap(async () => ({ results: await doctor('none') })),
  );
  app.post('/cluster/forget', async (req: Request, res: Response) => {
    const node = req.query.node;
    if (!deps.cluster) {
      res.status(400).json({ Err: 'cluster: this mynet has no cluster store (MYNET_ETCD_ENDPOINTS is not set)' });
      return;
    }
    if (typeof node !== 'string' || node === '') {
      res.status(400).json({ Err: 'node: give the name of the node to forget (mynet cluster forget <node>)' });
      return;
    }
    const cluster = deps.cluster;
    await wrap(async () => ({ node, ...(await cluster.forget(node)) }))(req, res);
  });
  app.post('/cluster/rotate-key', async (req: Request, res: Response) => {
    const cluster = deps.cluster;
    if (!cluster) {
      res.status(400).json({ Err: 'cluster: this mynet has no cluster store (MYNET_ETCD_ENDPOINTS is not set)' });
      return;
    }
    await wrap(() => cluster.rotateKey())(req, res);
  });
  app.post('/doctor', async (req: Request, res: Response) => {
    // Only the two repair modes: anything else (fix=none, a typo) must not go on to remove orphans.
    const fix = req.query.fix ?? 'all';
    if (fix !== 'all' && fix !== 'safe') {
      res.status(400).json({ Err: `fix must be "all" or "safe", not ${JSON.stringify(fix).slice(0, 100)}` });
      return;
    }
    await wrap(async () => ({ results: await doctor(fix) }))(req, res);
  });
  // Network policy (issue 25): the body is the file as the user wrote it (JSON or YAML), checked
  // here in full before anything changes; a refusal names the field.
  app.post(
    '/policies',
    express.text({ type: () => true, limit: POLICY_LIMITS.bytes + 1 }),
    wrap(async (req) => {
      if (typeof req.body !== 'string') throw invalid('policy', 'send the policy file as the request body');
      const policies = parsePolicyText('policy', req.body);
      return deps.plugin.applyPolicies(policies, (await names()).networks, deps.log);
    }),
  );
  app.get(
    '/policies',
    wrap(async () => ({ policies: policiesView(deps.plugin.state, await names()) })),
  );
  app.delete(
    '/policies/:name',
    wrap((req) => deps.plugin.removePolicy(checkPolicyName('name', req.params.name), deps.log)),
  );
  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ Err: `unknown admin route: ${req.method} ${req.path.slice(0, 200)}` });
  });
  return app;
}
