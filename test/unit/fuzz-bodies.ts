/**
 * The fuzz test's request bodies (not a test file): the recording of a real dockerd 20.10,
 * rewritten for mynet, and a seeded mutator that turns one of its bodies into a hostile or a
 * slightly different one.
 */
import { readFileSync } from 'node:fs';
import { DOCKERD_FIXTURE } from './support.js';

export interface Line {
  readonly path: string;
  readonly body: Record<string, unknown> | null;
}

/**
 * The recording as mynet can answer it: it was made against another IPAM plugin, whose pool ids
 * were "pool-1", "pool-2"... (replay() puts mynet's own in their place), and one network carries
 * an option that plugin took and mynet refuses by design (unknown mynet.* options are errors).
 */
export function recording(): Line[] {
  return readFileSync(DOCKERD_FIXTURE, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Line)
    .map((l) => {
      const generic = (l.body?.Options as Record<string, unknown> | undefined)?.['com.docker.network.generic'] as
        Record<string, unknown> | undefined;
      if (generic) delete generic['mynet.custom'];
      return l;
    });
}

/** The recorded pool ids replaced by mynet's (recorded id → ours, filled in by the replay). */
export function withPoolIds(body: Record<string, unknown> | null, ids: ReadonlyMap<string, string>): Record<string, unknown> | null {
  if (body === null || typeof body.PoolID !== 'string') return body;
  return { ...body, PoolID: ids.get(body.PoolID) ?? body.PoolID };
}

const HOSTILE: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1e308,
  3.5,
  [],
  {},
  [[]],
  { a: { b: { c: {} } } },
  '',
  ' ',
  '-',
  '--',
  '-rf',
  '--help',
  '-batch',
  'x'.repeat(16),
  'mn-' + 'a'.repeat(13),
  'eth0',
  'lo',
  'docker0',
  'a b',
  'a\nb',
  'a\u0000b',
  'a;reboot',
  '$(reboot)',
  '`id`',
  '|id',
  '&& id',
  "'; drop",
  '"quoted"',
  '\\',
  '../../etc/passwd',
  'ユニコード',
  '🙂'.repeat(20),
  '\u202e',
  'x'.repeat(70_000),
  '10.0.0.0/33',
  '10.0.0.1',
  '999.1.1.1/24',
  '10.0.0.0/8',
  '0.0.0.0/0',
  '::ffff:10.0.0.1',
  '::ffff:10.0.0.1/120',
  'fd00::/200',
  'fd00::1/64',
  '10.1.0.0/16',
  '10.1.0.0/24',
  '10.1.0.1/24',
  '224.0.0.1/4',
  '255.255.255.255/32',
  '::/0',
  'fe80::1/64',
  '1.2.3.4/-1',
  '1.2.3.4/08',
  'ABCDEF',
  'g'.repeat(64),
  'a'.repeat(63),
  'a'.repeat(65),
  '0'.repeat(64),
  'A'.repeat(64),
  '0123456789ab',
  'f'.repeat(64),
  '02:42:ac:11:00:02',
  '01:00:5e:00:00:01',
  'zz:zz:zz:zz:zz:zz',
  '0',
  '65536',
  '99999',
  '-80',
  '1-2',
  'true',
  'false',
  'yes',
];

/** Options that reach host commands: the bridge name and friends. */
const GENERIC_KEYS = [
  'com.docker.network.bridge.name',
  'com.docker.network.driver.mtu',
  'com.docker.network.bridge.enable_icc',
  'com.docker.network.bridge.host_binding_ipv4',
  'com.docker.network.container_iface_prefix',
  'mynet.isolate',
  'mynet.dns',
  'com.docker.network.bridge.enable_ip_masquerade',
];

const NOT_JSON = ['', 'null', '[]', '"x"', '42', '{', '{"a":', 'not json', '\u0000', '{"NetworkID": NaN}'];

type Path = (string | number)[];

/** Every path to a value in a JSON tree. */
function paths(v: unknown, at: Path = []): Path[] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}

function setAt(root: unknown, at: Path, value: unknown, del = false): unknown {
  if (at.length === 0) return value;
  const copy = (root && typeof root === 'object' ? structuredClone(root) : {}) as Record<string | number, unknown>;
  let cur = copy;
  for (const k of at.slice(0, -1)) {
    const next = cur[k];
    if (!next || typeof next !== 'object') return copy; // the path went away in an earlier mutation
    cur = next as Record<string | number, unknown>;
  }
  const last = at.at(-1) as string | number;
  if (Array.isArray(cur) && typeof last === 'string') return copy; // (an array's "constructor" would break the generator itself)
  if (del) delete cur[last];
  else cur[last] = value;
  return copy;
}

const valueAt = (root: unknown, at: Path): unknown =>
  at.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), root);

/**
 * A mutator over the recorded bodies. Most mutations change one value, so a body is often still
 * well-formed and only its meaning changes: a value from the same field of another recorded
 * request (the other network's id, another pool's address: accepted or refused by the plugin's
 * rules, not by the schema), a field removed (accepted where it is optional), or a hostile value
 * (wrong type, injection, bad CIDR...). A few bodies are not JSON at all.
 */
export function mutator(
  rnd: () => number,
  bodies: readonly (Record<string, unknown> | null)[],
): (seed: Record<string, unknown> | null) => string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  // Every value the recording has under each key name: the "plausible" replacements.
  const byKey = new Map<string, unknown[]>();
  for (const b of bodies) {
    for (const p of paths(b)) {
      const k = p.at(-1);
      if (typeof k !== 'string') continue;
      const list = byKey.get(k) ?? [];
      list.push(valueAt(b, p));
      byKey.set(k, list);
    }
  }
  return (seed) => {
    if (rnd() < 0.04) return pick(NOT_JSON);
    let body: unknown = seed ?? {};
    for (let n = rnd() < 0.7 ? 1 : 2 + Math.floor(rnd() * 2); n > 0; n--) {
      const all = paths(body);
      const at = pick(all);
      const last = at.at(-1);
      const k = rnd();
      if (k < 0.3 && typeof last === 'string' && byKey.has(last)) body = setAt(body, at, structuredClone(pick(byKey.get(last) ?? [])));
      else if (k < 0.65) body = setAt(body, at, pick(HOSTILE));
      else if (k < 0.78 && at.length > 0) body = setAt(body, at, undefined, true);
      else if (k < 0.85)
        body = setAt(body, [pick(['Extra', '__proto__', 'constructor', 'Options', 'Interface', 'IPv4Data'])], pick(HOSTILE));
      else if (k < 0.95) body = setAt(body, ['Options'], { 'com.docker.network.generic': { [pick(GENERIC_KEYS)]: pick(HOSTILE) } });
      else body = setAt(body, pick(all.filter((p) => p.length > 0).concat([[]])), [pick(HOSTILE), pick(HOSTILE)]);
    }
    return JSON.stringify(body) ?? 'null';
  };
}
