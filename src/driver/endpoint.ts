/**
 * CreateEndpoint / Join / Leave / DeleteEndpoint / EndpointOperInfo decisions.
 * dockerd configures the container side itself (it moves, renames and addresses the veth end we
 * name in Join), so we only make the pair and tell it which end to take (protocol.md §5d).
 */
import { PluginError, invalid } from '../errors.js';
import { bareAddress } from '../rules/address.js';
import { checkCidr } from '../rules/host-text.js';
import { labelsFromOptions } from '../rules/label.js';
import { checkMac } from '../rules/mac.js';
import { checkId } from '../rules/names.js';
import { containerVethName, hostVethName } from '../plan/link-names.js';
import { macFromIPv4, macFromId, vethSteps } from '../plan/link.js';
import type { HostPlan } from '../plan/step.js';
import { portMapInfo } from './ports.js';
import { unpublishSteps } from '../plan/ports.js';
import type { PlannedDecision } from '../decision.js';
import { policyStep } from './policy.js';
import { type Change, type EndpointRecord, type NetworkRecord, type StateView, endpointOf, mtuOf, networkOf } from './state.js';

export interface EndpointInterface {
  Address?: string;
  AddressIPv6?: string;
  MacAddress?: string;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Interface?: EndpointInterface | null;
  Options?: Record<string, unknown> | null;
}

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  DisableGatewayService?: boolean;
}

/** The address as dockerd sent it, once checked (the records keep dockerd's text). */
const cidrText = (field: string, v: string, family: 4 | 6): string => {
  checkCidr(field, v, family);
  return v;
};

export function createEndpoint(state: StateView, req: CreateEndpointRequest): PlannedDecision<{ Interface?: { MacAddress: string } }> {
  const nid = checkId('NetworkID', req.NetworkID);
  const eid = checkId('EndpointID', req.EndpointID);
  const net = networkOf(state, nid);
  const iface = req.Interface ?? {};
  const address = iface.Address ? cidrText('Interface.Address', iface.Address, 4) : undefined;
  const addressV6 = iface.AddressIPv6 ? cidrText('Interface.AddressIPv6', iface.AddressIPv6, 6) : undefined;
  const given = iface.MacAddress ? checkMac('Interface.MacAddress', iface.MacAddress) : undefined;
  const labels = labelsFromOptions(req.Options);
  const existing = state.endpoints.get(eid);
  if (existing) {
    if (existing.networkId !== nid) throw new PluginError('CONFLICT', `EndpointID: ${eid.slice(0, 12)} already exists on another network`);
    // A repeat of a create that succeeded: answer as the first time did.
    return { changes: [], plan: [], response: given ? {} : { Interface: { MacAddress: existing.mac } } };
  }
  // Link names hold 12 hex of the id: another endpoint with the same first 12 would own them.
  const hostIf = hostVethName(eid);
  for (const e of state.endpoints.values()) {
    if (e.hostIf === hostIf)
      throw new PluginError(
        'CONFLICT',
        `EndpointID: ${eid.slice(0, 12)} starts like endpoint ${e.id.slice(0, 16)}, whose interface ${hostIf} it would need`,
      );
  }
  // A name a record holds is a conflict, never a leftover to delete (the plan's first step would):
  // a bridge stored before bridge names were reserved may hold this veth name.
  const containerIf = containerVethName(eid);
  for (const n of state.networks.values()) {
    if (n.bridge === hostIf || n.bridge === containerIf)
      throw new PluginError('CONFLICT', `EndpointID: its interface name ${n.bridge} is the bridge of mynet network ${n.id.slice(0, 12)}`);
  }
  const endpoint: EndpointRecord = {
    id: eid,
    networkId: nid,
    hostIf,
    containerIf,
    // Our own MAC only when dockerd sent none; echoing a field dockerd set fails the endpoint.
    // Docker's rule when it has an IPv4 address (see macFromIPv4); from the id when IPv6-only.
    mac: given ?? (address ? macFromIPv4(address) : macFromId(eid)),
    ...(address ? { address } : {}),
    ...(addressV6 ? { addressV6 } : {}),
    ports: [],
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
  };
  const changes: Change[] = [{ op: 'endpoint.put', endpoint }];
  return {
    changes,
    // Its address is in the policy's sets before its veth exists: it is never reachable unprotected.
    plan: [...policyStep(state, net, changes), ...endpointSteps(net, endpoint)],
    response: given ? {} : { Interface: { MacAddress: endpoint.mac } },
  };
}

/** The host steps that make a stored endpoint (create and restore at start). */
export const endpointSteps = (net: NetworkRecord, e: EndpointRecord): HostPlan =>
  vethSteps({
    networkId: net.id,
    endpointId: e.id,
    bridge: net.bridge,
    hostIf: e.hostIf,
    containerIf: e.containerIf,
    mtu: mtuOf(net),
    mac: e.mac,
  });

const gatewayIp = (subnets: NetworkRecord['ipv4']): string | undefined => {
  const gw = subnets.find((s) => s.gateway)?.gateway;
  return gw && bareAddress(gw);
};

export function join(state: StateView, req: { NetworkID: string; EndpointID: string; SandboxKey?: string }): PlannedDecision<JoinResponse> {
  const net = networkOf(state, checkId('NetworkID', req.NetworkID));
  const ep = endpointOf(state, checkId('EndpointID', req.EndpointID));
  if (ep.networkId !== net.id) throw invalid('EndpointID', `${ep.id.slice(0, 12)} is not on network ${net.id.slice(0, 12)}`);
  const response: JoinResponse = { InterfaceName: { SrcName: ep.containerIf, DstPrefix: net.options.ifacePrefix } };
  if (net.options.internal) {
    // Internal: no gateway, and no docker_gwbridge detour either.
    response.DisableGatewayService = true;
  } else {
    // A gateway keeps dockerd from adding a docker_gwbridge interface (protocol.md §5a).
    const gw4 = gatewayIp(net.ipv4);
    const gw6 = gatewayIp(net.ipv6);
    if (gw4) response.Gateway = gw4;
    if (gw6) response.GatewayIPv6 = gw6;
  }
  const sandboxKey = typeof req.SandboxKey === 'string' ? req.SandboxKey : undefined;
  return {
    changes: sandboxKey && sandboxKey !== ep.sandboxKey ? [{ op: 'endpoint.put', endpoint: { ...ep, sandboxKey } }] : [],
    plan: [],
    response,
  };
}

export function leave(state: StateView, req: { NetworkID: string; EndpointID: string }): PlannedDecision<Record<string, never>> {
  checkId('NetworkID', req.NetworkID);
  const ep = state.endpoints.get(checkId('EndpointID', req.EndpointID));
  if (!ep || (ep.sandboxKey === undefined && ep.ports.length === 0)) return { changes: [], plan: [], response: {} };
  const { sandboxKey: _gone, ...rest } = ep;
  // Leave also unpublishes: Revoke does not always come first (protocol.md §4.4).
  return { changes: [{ op: 'endpoint.put', endpoint: { ...rest, ports: [] } }], plan: unpublishSteps(ep), response: {} };
}

export function deleteEndpoint(state: StateView, req: { NetworkID: string; EndpointID: string }): PlannedDecision<Record<string, never>> {
  checkId('NetworkID', req.NetworkID);
  const ep = state.endpoints.get(checkId('EndpointID', req.EndpointID));
  if (!ep) return { changes: [], plan: [], response: {} };
  const changes: Change[] = [{ op: 'endpoint.delete', id: ep.id }];
  return {
    changes,
    // The veth goes down now (its bridge port forwards nothing) and is deleted, and so leaves
    // its bridge, after the answer, with others retired meanwhile: a delete waits ~20 ms in the
    // kernel, which would be every `docker rm`'s, and leaving a bridge of 1000 ports ~1.6 ms.
    plan: [
      // Its address leaves the policy's sets first: a later endpoint given it must not inherit its access.
      ...policyStep(state, state.networks.get(ep.networkId), changes),
      ...unpublishSteps(ep),
      { what: `retire veth ${ep.hostIf}`, run: { kind: 'link-retire', name: ep.hostIf } },
      { what: `delete retired veths`, run: { kind: 'link-reap', name: ep.hostIf }, later: true },
    ],
    response: {},
  };
}

export function endpointOperInfo(state: StateView, req: { NetworkID: string; EndpointID: string }): { Value: Record<string, unknown> } {
  checkId('NetworkID', req.NetworkID);
  const ep = state.endpoints.get(checkId('EndpointID', req.EndpointID));
  if (!ep) return { Value: {} };
  return { Value: { 'com.docker.network.endpoint.macaddress': ep.mac, 'com.docker.network.portmap': portMapInfo(ep) } };
}
