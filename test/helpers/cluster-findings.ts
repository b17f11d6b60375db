/**
 * What the reconciler lists of a cluster agent's networks without a kernel (unit tier): each
 * plane's notes and refusals (doctor/vxlan-entries.ts on the plane's view, no entries read) and
 * the agent's own findings. The host tier asks Plugin.doctor, which reads the kernel too.
 */
import type { Logger } from 'pino';
import type { Difference } from '../../src/doctor/difference.js';
import { entryDifferences } from '../../src/doctor/vxlan-entries.js';
import type { ClusterAgent } from '../../src/multihost/agent.js';

export async function clusterFindings(agent: ClusterAgent, log: Logger): Promise<Difference[]> {
  await agent.idle();
  const planes = [...agent.planes.values()].flatMap((p) => entryDifferences({ id: p.networkId, cluster: p.binding }, p.view(), undefined));
  return [...(await agent.findings(false, log)), ...planes];
}
