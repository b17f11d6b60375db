/**
 * Whether a host's kernel answers on its registered underlay address (issue 22, finding 4:
 * `mynet cluster forget` of a host that is only cut off from etcd gave its addresses away). One
 * TCP connection attempt to port 4789, bounded in time: nothing listens on TCP 4789 (VXLAN is
 * UDP), so a live kernel answers with a reset, and a reset or an accepted connection both say the
 * machine is up. A timeout, or "unreachable" from a router, says nothing answered. A firewall
 * that drops TCP 4789 silently makes a live host look gone: then forget is not refused (as before).
 */
import { Socket } from 'node:net';

export const PROBE_PORT = 4789;
export const PROBE_TIMEOUT_MS = 1000;

/** `port` is for the unit tier's own listener; the cluster always probes PROBE_PORT. */
export function underlayAnswers(address: string, timeoutMs = PROBE_TIMEOUT_MS, port = PROBE_PORT): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (answers: boolean): void => {
      s.destroy();
      resolve(answers);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
    s.connect({ host: address, port });
  });
}
