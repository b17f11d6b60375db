/**
 * A stand-in for a real upstream resolver, so that tests prove resolution past mynet's zone
 * without any address beyond this machine: mynet's own DNS code (dist/dns), serving the zone
 * `example` with one name, ext.svc.example, in a namespace the test made.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { sh, waitFor } from './sh.js';

const ROOT = resolve(import.meta.dirname, '../../..');
export const UPSTREAM_NAME = 'ext.svc.example';

/** Serves UPSTREAM_NAME → `answer` on `host`:53 inside `ns`; resolves once it answers. */
export async function startUpstreamDns(ns: string, host: string, answer: string): Promise<ChildProcess> {
  const script = `const { startDnsServer } = await import('${ROOT}/dist/dns/server.js');
    const { NameTable } = await import('${ROOT}/dist/dns/records.js');
    const { pino } = await import('${ROOT}/node_modules/pino/pino.js');
    const t = new NameTable('example', [{ id: 'x', name: 'ext', networks: [{ networkId: 'n', networkName: 'svc', ipv4: '${answer}', aliases: [] }] }]);
    await startDnsServer({ listen: { host: '${host}', port: 53 }, table: () => t, log: pino({ level: 'silent' }) });`;
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { stdio: 'ignore' });
  await waitFor(
    `the upstream DNS on ${host} in ${ns}`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`the upstream DNS exited (${proc.exitCode})`);
      return (await sh('ip', ['netns', 'exec', ns, 'dig', `@${host}`, '+tries=1', '+time=1', '+short', UPSTREAM_NAME])).stdout === answer;
    },
    10_000,
    100,
  );
  return proc;
}
