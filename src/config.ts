/** Settings come from the environment (the managed plugin's `docker plugin set` edits env too). */
import { DNS_NAME } from './rules/names.js';
import { invalid } from './errors.js';
import { type Listen, parseListen } from './rules/listen.js';
import { type DefaultPool, parseDefaultPools } from './ip/pools.js';

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
  /** The DNS zone mynet serves (`<container>.<network>.<zone>`). */
  readonly dnsZone: string;
  /** Where the DNS server listens; undefined: disabled. */
  readonly dnsListen: Listen | undefined;
  /** The host's /proc/sys/net (a writable bind mount of it in the managed plugin). */
  readonly procSysNet: string;
}

export const DEFAULTS = {
  MYNET_SOCKET: '/run/docker/plugins/mynet.sock',
  MYNET_STATE_DIR: '/var/lib/mynet',
  MYNET_LOG_LEVEL: 'info',
  MYNET_DEFAULT_POOLS: '10.200.0.0/16/24,fd42:4d4e:6574::/48/64',
  MYNET_RECONCILE_INTERVAL: '60',
  MYNET_COMMAND_TIMEOUT: '10000',
  MYNET_ADMIN_SOCKET: '/run/mynet/admin.sock',
  MYNET_DNS_ZONE: 'mynet',
  MYNET_PROC_SYS_NET: '/proc/sys/net',
} as const;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function positive(key: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw invalid(key, `"${v}" is not a positive whole number`);
  return Number(v);
}

function zone(v: string): string {
  const z = v.toLowerCase().replace(/\.$/, '');
  if (!DNS_NAME.test(z)) throw invalid('MYNET_DNS_ZONE', `"${v}" is not a DNS name`);
  return z;
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
    dnsZone: zone(get('MYNET_DNS_ZONE')),
    // Unlike the others, an empty MYNET_DNS_LISTEN means "off", so it has its own default.
    dnsListen: parseListen(env.MYNET_DNS_LISTEN ?? '127.0.0.153:53'),
    procSysNet: get('MYNET_PROC_SYS_NET').replace(/\/+$/, ''),
  });
}
