/**
 * The world of the policy decision tests (policy.test.ts, policy-delta.test.ts): the kernel
 * fixture's state with labels, what a fresh create of it makes on the fake nft, one policy file.
 */
import { networkSteps } from '../../../src/driver/network.js';
import { policyObjectsOf } from '../../../src/driver/policy.js';
import type { State } from '../../../src/driver/state.js';
import { applyPlan } from '../../../src/host/executor.js';
import { TABLE, baseCommands, nftOp } from '../../../src/plan/nft.js';
import { DUAL, E1, E2, fixtureState } from '../doctor/fixture.js';
import { FakeNftExecutor } from '../../helpers/fake-nft.js';
import { silentLog } from '../support.js';

export const base = { what: 'ensure the mynet table', run: nftOp(baseCommands()) };
export const NONE = new Map<string, string>();

/** The fixture with labels on DUAL's two endpoints: e1 app=db, e2 app=web. */
export function labelled(): State {
  const s = fixtureState();
  for (const [id, app] of [
    [E1, 'db'],
    [E2, 'web'],
  ] as const) {
    const e = s.endpoints.get(id);
    if (!e || e.networkId !== DUAL) throw new Error(`fixture: ${id} is not on DUAL`);
    s.apply([{ op: 'endpoint.put', endpoint: { ...e, labels: { app } } }]);
  }
  return s;
}

/** What creating the state's networks from scratch makes, policies included. */
export async function fresh(s: State): Promise<ReturnType<FakeNftExecutor['nft']['dump']>> {
  const exec = new FakeNftExecutor();
  await applyPlan(exec, [base, ...[...s.networks.values()].flatMap((n) => networkSteps(n, policyObjectsOf(s, n.id)))], silentLog);
  return exec.nft.dump(TABLE);
}

export const DB_FROM_WEB = `name: db-from-web
network: ${DUAL.slice(0, 12)}
select: { app: db }
ingress:
  - from: [ { app: web } ]
    ports: [ tcp/5432 ]
`;
