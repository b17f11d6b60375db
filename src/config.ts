/** Settings come from the environment (the managed plugin's `docker plugin set` edits env too). */
import { invalid } from './errors.js';
import { type DefaultPool, parseDefaultPools } from './driver/ipam.js';

export interface Config {
  readonly socket: string;
  readonly stateDir: string;
  readonly logLevel: string;
  readonly defaultPools: readonly DefaultPool[];
  /** Seconds between checks that the host still matches the state (FORWARD hook, links). */
  readonly reconcileIntervalS: number;
  /** Milliseconds a host command may run before it is killed and the request fails. */
  readonly commandTimeoutMs: number;
  /** The admin socket (root only) that the `mynet` command and Prometheus talk to. */
  readonly adminSocket: string;
}

export const DEFAULTS = {
  MYNET_SOCKET: '/run/docker/plugins/mynet.sock',
  MYNET_STATE_DIR: '/var/lib/mynet',
  MYNET_LOG_LEVEL: 'info',
  MYNET_DEFAULT_POOLS: '10.200.0.0/16/24,fd42:4d4e:6574::/48/64',
  MYNET_RECONCILE_INTERVAL: '60',
  MYNET_COMMAND_TIMEOUT: '10000',
  MYNET_ADMIN_SOCKET: '/run/mynet/admin.sock',
} as const;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function positive(key: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw invalid(key, `"${v}" is not a positive whole number`);
  return Number(v);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (k: keyof typeof DEFAULTS): string => {
    const v = env[k];
    return v === undefined || v === '' ? DEFAULTS[k] : v;
  };
  const logLevel = get('MYNET_LOG_LEVEL');
  if (!LEVELS.includes(logLevel)) throw invalid('MYNET_LOG_LEVEL', `"${logLevel}" is not one of ${LEVELS.join(', ')}`);
  return Object.freeze({
    socket: get('MYNET_SOCKET'),
    stateDir: get('MYNET_STATE_DIR'),
    logLevel,
    defaultPools: parseDefaultPools(get('MYNET_DEFAULT_POOLS')),
    reconcileIntervalS: positive('MYNET_RECONCILE_INTERVAL', get('MYNET_RECONCILE_INTERVAL')),
    commandTimeoutMs: positive('MYNET_COMMAND_TIMEOUT', get('MYNET_COMMAND_TIMEOUT')),
    adminSocket: get('MYNET_ADMIN_SOCKET'),
  });
}
