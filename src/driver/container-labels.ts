/**
 * Container labels for network policy (issue 25), pure: what the Docker Engine API follow saw of
 * each endpoint's container (`mynet.label.*` Docker labels, already checked: rules/label.ts
 * labelsFromContainer) becomes the endpoint record's `containerLabels`, and the network's policy
 * objects follow in the same decision (driver/policy.ts policyStep: an endpoint change alone moves
 * only its own set elements). Journaled like the rest of the record, so a restart enforces what
 * was last seen at once instead of leaving those endpoints open until the follow has listed again
 * (Docker never changes a container's labels while it runs).
 */
import type { PlannedDecision } from '../decision.js';
import { type Labels, fitContainerLabels } from '../rules/label.js';
import type { HostStep } from '../plan/step.js';
import { policyStep } from './policy.js';
import type { Change, EndpointRecord, StateView } from './state.js';

export interface Relabelled {
  /** The endpoints whose container labels changed (their cluster records are published again). */
  readonly endpoints: readonly string[];
  /** Container labels left out for room (a driver option of another key took it), by endpoint. */
  readonly cut: ReadonlyMap<string, readonly string[]>;
}

const sameLabels = (a: Labels | undefined, b: Labels): boolean => JSON.stringify(a ?? {}) === JSON.stringify(b);

/**
 * `seen`: endpoint id → its container's labels, for the endpoints the follow knows. An endpoint
 * it does not know keeps what it has (the follow may not have listed yet); an endpoint id no
 * record has is not this host's business (another driver's network, or deleted meanwhile).
 */
export function relabel(s: StateView, seen: ReadonlyMap<string, Labels>): PlannedDecision<Relabelled> {
  const changes: Change[] = [];
  const cut = new Map<string, readonly string[]>();
  const networks = new Set<string>();
  for (const [id, labels] of seen) {
    const e = s.endpoints.get(id);
    if (!e) continue;
    const fit = fitContainerLabels(e.labels, labels);
    if (sameLabels(e.containerLabels, fit.labels)) continue;
    if (fit.cut.length > 0) cut.set(id, fit.cut);
    const { containerLabels: _old, ...rest } = e;
    const next: EndpointRecord = Object.keys(fit.labels).length > 0 ? { ...rest, containerLabels: fit.labels } : rest;
    changes.push({ op: 'endpoint.put', endpoint: next });
    networks.add(e.networkId);
  }
  const plan: HostStep[] = [...networks].flatMap((id) => policyStep(s, s.networks.get(id), changes));
  const endpoints = changes.flatMap((c) => (c.op === 'endpoint.put' ? [c.endpoint.id] : []));
  return { changes, plan, response: { endpoints, cut } };
}
