/** A TCP service in a container and the question to it from another, for the cross-host e2e files. */
import type { DockerHost } from './hosts.js';

export const PORT = '80';

/** A container that answers every TCP connection on PORT with `token` (busybox nc, persistent). */
export const serving = (token: string): string[] => ['nc', '-ll', '-p', PORT, '-e', 'echo', token];

/** What `target`:PORT answers to a TCP connection made from inside container `from` on host `h`. */
export const ask = async (h: DockerHost, from: string, target: string): Promise<string> => {
  const r = await h.docker('exec', from, 'nc', '-w', '3', target, PORT);
  return r.exitCode === 0 ? r.stdout : `(nc exited ${r.exitCode}: ${r.stderr})`;
};

/** A container's address on a network, as dockerd tells it. */
export const ipOn = (h: DockerHost, c: string, net: string): Promise<string> =>
  h.dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
