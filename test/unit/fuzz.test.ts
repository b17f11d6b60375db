/**
 * Issue: reliability. Hostile and broken requests (1000 per route by default), generated from the bodies a real dockerd sent
 * (the recorded fixture), mutated by a seeded generator (MYNET_FUZZ_SEED, MYNET_FUZZ_PER_ROUTE):
 * wrong types, missing and extra fields, huge and unicode strings, NUL bytes, shell
 * metacharacters and would-be command arguments, interface names over 15 bytes, bad and
 * overlapping CIDRs, IPv4-mapped IPv6, unknown and malformed ids, bodies that are not JSON.
 * Over a real unix socket to the real app, with a file store in a temporary directory and a
 * recording executor. For every request:
 *  - the answer is 200 with a JSON object, 500 with {"Err": "<the field: the reason>"}, or 413;
 *  - a refused request ran no host command and left both state files byte for byte the same;
 *  - no host command ever carries a newline, a NUL, or an argument that starts with "-" and is
 *    not one of ours (nothing a request sends can become an option of ip or nft);
 * and the server answers a well-formed request afterwards.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, type Server, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { routes } from '../../src/http/routes.js';
import { listenUnix } from '../../src/http/socket.js';
import { renderOp } from '../../src/plan/step.js';
import { Plugin } from '../../src/plugin.js';
import { FileStore } from '../../src/store/file-store.js';
import { RecordingExecutor } from '../helpers/recording-executor.js';
import { DOCKERD_FIXTURE, prng, silentLog } from './support.js';
import { testPlugin } from '../helpers/test-plugin.js';

const SEED = Number(process.env.MYNET_FUZZ_SEED ?? 20261122);
const PER_ROUTE = Number(process.env.MYNET_FUZZ_PER_ROUTE ?? 1000);
const FIXTURE = DOCKERD_FIXTURE;

const rnd = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');

const HOSTILE: readonly unknown[] = [
  null, true, false, 0, -1, 1e308, 3.5, [], {}, [[]], { a: { b: { c: {} } } }, '', ' ', '-', '--', '-rf', '--help', '-batch',
  'x'.repeat(16), 'mn-' + 'a'.repeat(13), 'eth0', 'lo', 'docker0', 'a b', 'a\nb', 'a\u0000b', 'a;reboot', '$(reboot)', '`id`', '|id', '&& id',
  "'; drop", '"quoted"', '\\', '../../etc/passwd', 'ユニコード', '🙂'.repeat(20), '\u202e', 'x'.repeat(70_000),
  '10.0.0.0/33', '10.0.0.1', '999.1.1.1/24', '10.0.0.0/8', '0.0.0.0/0', '::ffff:10.0.0.1', '::ffff:10.0.0.1/120', 'fd00::/200', 'fd00::1/64',
  '10.1.0.0/16', '10.1.0.0/24', '10.1.0.1/24', '224.0.0.1/4', '255.255.255.255/32', '::/0', 'fe80::1/64', '1.2.3.4/-1', '1.2.3.4/08',
  'ABCDEF', 'g'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), '0'.repeat(64), 'A'.repeat(64), hex(12), hex(64),
  '02:42:ac:11:00:02', '01:00:5e:00:00:01', 'zz:zz:zz:zz:zz:zz', '0', '65536', '99999', '-80', '1-2', 'true', 'false', 'yes',
];

interface Line { path: string; body: Record<string, unknown> | null }
const fixture: Line[] = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Line);

/** Every path to a value in a JSON tree. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}
function setAt(root: unknown, at: (string | number)[], value: unknown, del = false): unknown {
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

/** One mutated body (as text) from a seed body. */
function mutate(seed: Record<string, unknown> | null): string {
  const base: unknown = seed ?? {};
  const r = rnd();
  if (r < 0.04) return pick(['', 'null', '[]', '"x"', '42', '{', '{"a":', 'not json', '\u0000', '{"NetworkID": NaN}']);
  let body: unknown = base;
  for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
    const all = paths(body);
    const at = pick(all);
    const k = rnd();
    if (k < 0.6) body = setAt(body, at, pick(HOSTILE));
    else if (k < 0.75 && at.length > 0) body = setAt(body, at, undefined, true);
    else if (k < 0.85) body = setAt(body, [pick(['Extra', '__proto__', 'constructor', 'Options', 'Interface', 'IPv4Data'])], pick(HOSTILE));
    else if (k < 0.95) {
      // Options that reach host commands: the bridge name and friends.
      const generic: Record<string, unknown> = {};
      generic[pick(['com.docker.network.bridge.name', 'com.docker.network.driver.mtu', 'com.docker.network.bridge.enable_icc', 'com.docker.network.bridge.host_binding_ipv4', 'com.docker.network.container_iface_prefix', 'mynet.isolate', 'mynet.dns', 'com.docker.network.bridge.enable_ip_masquerade'])] = pick(HOSTILE);
      body = setAt(body, ['Options'], { 'com.docker.network.generic': generic });
    } else body = setAt(body, pick(all.filter((p) => p.length > 0).concat([[]])), [pick(HOSTILE), pick(HOSTILE)]);
  }
  return JSON.stringify(body) ?? 'null';
}

let tmp: string;
let socketPath: string;
let server: Server;
let agent: Agent;
let store: FileStore;
let plugin: Plugin;
const exec = new RecordingExecutor();

function post(path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, agent, method: 'POST', path, headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const files = async (): Promise<string> => (await readFile(store.snapshotPath, 'utf8').catch(() => '')) + '\u0001' + (await readFile(store.journalPath, 'utf8').catch(() => ''));

/** Arguments of ours that start with "-" (ip/nft syntax we write ourselves). */
const OUR_DASHED = new Set(['-batch', '-j', '-o', '-n']);
function checkOps(from: number): void {
  for (const c of exec.calls.slice(from)) {
    const text = renderOp(c.op);
    expect(text, 'a host command carries a NUL').not.toContain('\u0000');
    if (c.op.kind === 'ip') {
      for (const a of c.op.args) {
        expect(/[\n\r]/.test(a) || a.includes('\u0000'), `ip argument ${JSON.stringify(a)}`).toBe(false);
        if (a.startsWith('-')) expect(OUR_DASHED.has(a), `ip argument ${JSON.stringify(a)} looks like an option`).toBe(true);
      }
    }
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mnt-fuzz-'));
  socketPath = join(tmp, 'p.sock');
  store = new FileStore({ dir: join(tmp, 'state'), log: silentLog });
  const state = await store.load();
  ({ plugin } = testPlugin({
    state,
    store,
    exec,
    linkOwner: (name) => Promise.resolve(['eth0', 'lo', 'docker0'].includes(name) ? 'foreign' : 'absent'),
    pools: '10.200.0.0/16/24,fd42:4d4e::/48/64',
  }));
  server = createServer(createApp({ plugin, log: silentLog, bodyLimit: '1mb' }));
  await listenUnix(server, socketPath);
  agent = new Agent({ keepAlive: true });
  console.log(`fuzz seed ${SEED}, ${PER_ROUTE} requests per route`);
});

afterAll(async () => {
  agent?.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await store?.close();
  await rm(tmp, { recursive: true, force: true });
});

/**
 * Something to aim at: the recording's networks, pools and endpoints, as dockerd made them
 * (replayed up to its teardown, which starts with the second endpoint's Leave). Before every
 * route, since fuzzed deletes that keep a real id remove them.
 */
async function aim(): Promise<void> {
  for (const l of fixture.slice(0, 41)) await post(l.path, l.body === null ? '' : JSON.stringify(l.body));
}

const seedsOf = (path: string): (Record<string, unknown> | null)[] => {
  const s = fixture.filter((l) => l.path === path).map((l) => l.body);
  return s.length ? s : [null];
};

describe('fuzz: every route, hostile bodies', () => {
  const counts: Record<string, { ok: number; refused: number }> = {};
  afterAll(() => console.log(JSON.stringify(counts)));

  for (const r of [...routes.map((x) => x.path), '/NetworkDriver.NoSuchCall', '/../../etc/passwd']) {
    it(r, async () => {
      const seeds = seedsOf(r);
      const c = (counts[r] = { ok: 0, refused: 0 });
      await aim();
      for (let i = 0; i < PER_ROUTE; i++) {
        const body = mutate(pick(seeds));
        const before = await files();
        const ops = exec.calls.length;
        const a = await post(r, body);
        expect([200, 404, 413, 500], `${r} ${body.slice(0, 200)}`).toContain(a.status);
        const json = JSON.parse(a.text) as Record<string, unknown>;
        expect(typeof json === 'object' && json !== null && !Array.isArray(json), a.text.slice(0, 200)).toBe(true);
        if (a.status === 200) {
          c.ok++;
          checkOps(ops);
          continue;
        }
        c.refused++;
        expect(typeof json.Err === 'string' && json.Err.length > 0, a.text.slice(0, 200)).toBe(true);
        // A clear message: "<field>: <reason>" or a sentence, never a stack or "[object Object]".
        expect(json.Err as string, body.slice(0, 200)).not.toMatch(/\n\s+at |\[object Object\]|undefined:/);
        expect(exec.calls.length, `${r} ${body.slice(0, 200)} ran host commands but was refused`).toBe(ops);
        expect(await files(), `${r} ${body.slice(0, 200)} changed the state files but was refused`).toBe(before);
      }
      // Still serving.
      expect((await post('/Plugin.Activate', '')).status).toBe(200);
    }, 120_000);
  }

  it('a body over the limit is 413 with {"Err"}, and the server goes on', async () => {
    const before = await files();
    const a = await post('/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'a'.repeat(64), Options: { x: 'y'.repeat(2 * 1024 * 1024) } }));
    expect(a.status).toBe(413);
    expect(JSON.parse(a.text)).toHaveProperty('Err');
    expect(await files()).toBe(before);
    expect((await post('/Plugin.Activate', '')).status).toBe(200);
  });
});
