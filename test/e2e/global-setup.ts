/**
 * The e2e tier needs a real dockerd and a container image. Use a dockerd that already answers;
 * otherwise start a throwaway one and stop it afterwards (removing the docker0 bridge it made
 * if there was none before). The image is made with `docker import` from Debian's
 * busybox-static, since no registry is reachable.
 */
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ENGINE, dockerAnswers, startDockerd, stopDockerd } from './helpers/dockerd.js';
import { ok, sh } from './helpers/sh.js';

export const IMAGE = 'mynet-test/busybox:latest';

let owned = false;
let hadDocker0 = true;
let forwardPolicy = '';
/** The forwarding switches as they were before the tier's dockerd turned them on. */
const FORWARDING = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];
let forwarding: string[] = [];

async function ensureImage(): Promise<void> {
  if ((await sh('docker', ['image', 'inspect', IMAGE])).exitCode === 0) return;
  const root = mkdtempSync(join(tmpdir(), 'mnt-bbroot-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'www']) mkdirSync(join(root, d));
    await ok('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    for (const a of (await ok('/bin/busybox', ['--list'])).split('\n'))
      if (a && a !== 'busybox') symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'www', 'index.html'), 'mynet-e2e\n');
    const tar = join(tmpdir(), `mnt-bbroot-${process.pid}.tar`);
    await ok('tar', ['-C', root, '-cf', tar, '.']);
    await ok('docker', ['import', '-c', 'CMD ["/bin/sh"]', tar, IMAGE]);
    rmSync(tar, { force: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The iptables FORWARD policy (dockerd sets DROP unless --ip-forward-no-drop; the next engine must not inherit it). */
export const policyOfForward = async (): Promise<string> => /^-P FORWARD (\w+)/m.exec(await ok('iptables', ['-S', 'FORWARD']))?.[1] ?? '';

export async function setup(project: TestProject): Promise<void> {
  const answers = await dockerAnswers();
  if (ENGINE && answers) {
    throw new Error(`the tier is to run on ${ENGINE}, but a dockerd already answers on the default socket: stop it and run again`);
  }
  if (!answers) {
    hadDocker0 = (await sh('ip', ['link', 'show', 'docker0'])).exitCode === 0;
    forwardPolicy = await policyOfForward();
    forwarding = FORWARDING.map((f) => readFileSync(f, 'utf8').trim());
    owned = true;
    await startDockerd();
  }
  const version = await ok('docker', [
    'version',
    '--format',
    'dockerd {{.Server.Version}} (API {{.Server.APIVersion}}), docker CLI {{.Client.Version}}',
  ]);
  console.log(`[engine] ${version}${ENGINE ? `; run as: ${ENGINE}` : ''}`);
  await ensureImage();
  project.provide('dockerdOwned', owned);
}

export async function teardown(): Promise<void> {
  if (!owned) return;
  await stopDockerd();
  if (!hadDocker0) await sh('ip', ['link', 'del', 'docker0']);
  if (forwardPolicy && (await policyOfForward()) !== forwardPolicy) await ok('iptables', ['-P', 'FORWARD', forwardPolicy]);
  // dockerd turned forwarding on and leaves it on: put back what was, so the next engine starts
  // from the host this one found (a dockerd that finds forwarding on does not set FORWARD DROP).
  FORWARDING.forEach((f, i) => {
    if (forwarding[i] !== undefined && readFileSync(f, 'utf8').trim() !== forwarding[i]) writeFileSync(f, forwarding[i]);
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    dockerdOwned: boolean;
  }
}
