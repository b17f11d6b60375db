/**
 * The routing table: every path dockerd calls, its schema and its handler. One generic adapter in
 * app.ts decodes, validates, calls and encodes, so no route repeats that plumbing.
 */
import type { Logger } from 'pino';
import type { CreateEndpointRequest } from '../driver/endpoint.js';
import type { RequestAddressRequest, RequestPoolRequest } from '../driver/ipam.js';
import type { CreateNetworkRequest } from '../driver/network.js';
import type { Plugin } from '../plugin.js';
import type { SchemaName } from '../protocol/schemas.js';

export interface RouteContext {
  readonly plugin: Plugin;
  readonly log: Logger;
  /** Things to do after dockerd (re)registers us, e.g. re-assert the FORWARD hook. */
  readonly onRegister: (log: Logger) => void;
}

export interface Route {
  readonly path: string;
  readonly schema: SchemaName;
  readonly handle: (body: never, ctx: RouteContext) => unknown;
}

type NetEp = { NetworkID: string; EndpointID: string };

const route = <T>(path: string, schema: SchemaName, handle: (body: T, ctx: RouteContext) => unknown): Route => ({
  path,
  schema,
  handle,
});

export const routes: readonly Route[] = [
  route('/Plugin.Activate', 'none', () => ({ Implements: ['NetworkDriver', 'IpamDriver'] })),

  route('/NetworkDriver.GetCapabilities', 'none', (_b, ctx) => {
    ctx.onRegister(ctx.log);
    return { Scope: 'local', ConnectivityScope: 'local' };
  }),
  route<CreateNetworkRequest>('/NetworkDriver.CreateNetwork', 'createNetwork', (b, c) => c.plugin.createNetwork(b, c.log)),
  route<{ NetworkID: string }>('/NetworkDriver.DeleteNetwork', 'networkOnly', (b, c) => c.plugin.deleteNetwork(b, c.log)),
  route<CreateEndpointRequest>('/NetworkDriver.CreateEndpoint', 'createEndpoint', (b, c) => c.plugin.createEndpoint(b, c.log)),
  route<NetEp>('/NetworkDriver.EndpointOperInfo', 'netEp', (b, c) => c.plugin.endpointOperInfo(b)),
  route<NetEp>('/NetworkDriver.DeleteEndpoint', 'netEp', (b, c) => c.plugin.deleteEndpoint(b, c.log)),
  route<NetEp & { SandboxKey?: string }>('/NetworkDriver.Join', 'join', (b, c) => c.plugin.join(b, c.log)),
  route<NetEp>('/NetworkDriver.Leave', 'netEp', (b, c) => c.plugin.leave(b, c.log)),
  route<NetEp & { Options?: Record<string, unknown> | null }>(
    '/NetworkDriver.ProgramExternalConnectivity',
    'programExternalConnectivity',
    (b, c) => c.plugin.programExternalConnectivity(b, c.log),
  ),
  route<NetEp>('/NetworkDriver.RevokeExternalConnectivity', 'netEp', (b, c) => c.plugin.revokeExternalConnectivity(b, c.log)),
  // Swarm-only calls: we are a local-scope driver, so there is nothing to allocate or discover.
  route('/NetworkDriver.AllocateNetwork', 'networkOnly', () => ({ Options: {} })),
  route('/NetworkDriver.FreeNetwork', 'networkOnly', () => ({})),
  route('/NetworkDriver.DiscoverNew', 'discover', () => ({})),
  route('/NetworkDriver.DiscoverDelete', 'discover', () => ({})),

  route('/IpamDriver.GetCapabilities', 'none', () => ({ RequiresMACAddress: false, RequiresRequestReplay: false })),
  route('/IpamDriver.GetDefaultAddressSpaces', 'none', (_b, c) => ({
    ...c.plugin.addressSpaces(),
  })),
  route<RequestPoolRequest>('/IpamDriver.RequestPool', 'requestPool', (b, c) => c.plugin.requestPool(b, c.log)),
  route<{ PoolID: string }>('/IpamDriver.ReleasePool', 'poolOnly', (b, c) => c.plugin.releasePool(b, c.log)),
  route<RequestAddressRequest>('/IpamDriver.RequestAddress', 'requestAddress', (b, c) => c.plugin.requestAddress(b, c.log)),
  route<{ PoolID: string; Address: string }>('/IpamDriver.ReleaseAddress', 'releaseAddress', (b, c) => c.plugin.releaseAddress(b, c.log)),
];
