/**
 * Issue: reliability. Hostile and broken requests to every route, made from the bodies a real
 * dockerd sent (the recorded fixture, rewritten for mynet's pool ids) by a seeded mutator
 * (fuzz-bodies.ts; MYNET_FUZZ_SEED, MYNET_FUZZ_PER_ROUTE): wrong types, missing and extra fields,
 * huge and unicode strings, NUL bytes, shell metacharacters and would-be command arguments,
 * interface names over 15 bytes, bad and overlapping CIDRs, IPv4-mapped IPv6, unknown and
 * malformed ids, bodies that are not JSON, and values taken from other recorded requests.
 *
 * Each request is sent in the state dockerd had made when it sent the recorded request it was
 * made from (the state files after the recording up to there, loaded into a fresh plugin), so a
 * mutated body aims at networks, endpoints and pools that exist, and an accepted one does not
 * spoil the next. Over a real unix socket to the real app, with a file store and a recording
 * executor. For every request:
 *  - the answer is 200 with a JSON object, 500 with {"Err": "<the field: the reason>"}, or 413;
 *  - a refused request ran no host command and left both state files byte for byte the same;
 *  - no host command ever carries a newline, a NUL, or an argument that starts with "-" and is
 *    not one of ours (nothing a request sends can become an option of ip or nft);
 * every route has both accepted and refused requests (so its success path is reached), and the
 * server answers a well-formed request afterwards.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, type Server, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { routes } from '../../src/http/routes.js';
import { listenUnix } from '../../src/http/socket.js';
import { renderOp } from '../../src/plan/step.js';
import type { Plugin } from '../../src/plugin.js';
import { FileStore } from '../../src/store/file-store.js';
import { RecordingExecutor } from '../helpers/recording-executor.js';
import { testPlugin } from '../helpers/test-plugin.js';
import { type Line, mutator, recording, withPoolIds } from './fuzz-bodies.js';
import { prng, silentLog } from './support.js';

const SEED = Number(process.env.MYNET_FUZZ_SEED ?? 20261122);
const PER_ROUTE = Number(process.env.MYNET_FUZZ_PER_ROUTE ?? 60);

const rnd = prng(SEED);
const lines: Line[] = recording();
const mutate = mutator(
  rnd,
  lines.map((l) => l.body),
);

let tmp: string;
let socketPath: string;
let server: Server;
let agent: Agent;
let store: FileStore;
let plugin: Plugin;
const exec = new RecordingExecutor();
/** Recorded pool id ("pool-1") → mynet's, from the replay's RequestPool answers. */
const poolIds = new Map<string, string>();

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

const files = async (): Promise<string> =>
  (await readFile(store.snapshotPath, 'utf8').catch(() => '')) + '\u0001' + (await readFile(store.journalPath, 'utf8').catch(() => ''));

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

/** The state files before each recorded request: [state.json or undefined, journal.jsonl]. */
const before: [string | undefined, string][] = [];
let loads = 0;

/** A fresh plugin on these state files (in a directory of its own). */
async function startOn(files?: [string | undefined, string]): Promise<void> {
  await store?.close();
  const dir = join(tmp, `run-${loads++}`);
  await mkdir(dir, { mode: 0o700 });
  if (files?.[0] !== undefined) await writeFile(join(dir, 'state.json'), files[0]);
  if (files) await writeFile(join(dir, 'journal.jsonl'), files[1]);
  store = new FileStore({ dir, log: silentLog });
  const state = await store.load();
  ({ plugin } = testPlugin({
    state,
    store,
    exec,
    linkOwner: (name) => Promise.resolve(['eth0', 'lo', 'docker0'].includes(name) ? 'foreign' : 'absent'),
    // The recording's first pool request (no pool asked for) got 10.140.1.0/24 from dockerd's
    // plugin then: the same from ours, so the addresses that follow are in it.
    pools: '10.140.1.0/24/24,fd42:4d4e::/48/64',
  }));
}

/** The recorded request k, as mynet can answer it. */
const bodyOf = (k: number): string => {
  const b = withPoolIds(lines[k]?.body ?? null, poolIds);
  return b === null ? '' : JSON.stringify(b);
};

/** Every route's recorded requests (by index); the calls dockerd never made to us get one of their own. */
const UNRECORDED: Record<string, Line> = {
  '/NetworkDriver.AllocateNetwork': {
    path: '/NetworkDriver.AllocateNetwork',
    body: { NetworkID: lines[4]?.body?.NetworkID, Options: {}, IPv4Data: [] },
  },
  '/NetworkDriver.FreeNetwork': { path: '/NetworkDriver.FreeNetwork', body: { NetworkID: lines[4]?.body?.NetworkID } },
  '/NetworkDriver.DiscoverNew': {
    path: '/NetworkDriver.DiscoverNew',
    body: { DiscoveryType: 1, DiscoveryData: { Address: '203.0.113.7', BindAddress: '203.0.113.7' } },
  },
  '/NetworkDriver.DiscoverDelete': {
    path: '/NetworkDriver.DiscoverDelete',
    body: { DiscoveryType: 1, DiscoveryData: { Address: '203.0.113.7' } },
  },
};
const RECORDED = lines.length;
function seedsOf(path: string): number[] {
  const ks = lines.flatMap((l, k) => (l.path === path ? [k] : []));
  if (ks.length) return ks;
  // Not recorded: an invented body, sent in the state before the recording's teardown.
  const extra = UNRECORDED[path] ?? { path, body: null };
  lines.push(extra);
  return [lines.length - 1];
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mnt-fuzz-'));
  socketPath = join(tmp, 'p.sock');
  await startOn();
  // Every route reaches the plugin of the moment: startOn() replaces it.
  const current = new Proxy({} as Plugin, {
    get: (_t, key) => {
      const v: unknown = Reflect.get(plugin, key, plugin);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(plugin) : v;
    },
  });
  server = createServer(createApp({ plugin: current, log: silentLog, bodyLimit: '1mb' }));
  await listenUnix(server, socketPath);
  agent = new Agent({ keepAlive: true });
  console.log(`fuzz seed ${SEED}, ${PER_ROUTE} requests per route (MYNET_FUZZ_SEED, MYNET_FUZZ_PER_ROUTE)`);
});

afterAll(async () => {
  agent?.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await store?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('fuzz: every route, hostile bodies', () => {
  const counts: Record<string, { ok: number; refused: number }> = {};
  afterAll(() => console.log(JSON.stringify(counts)));

  it('the recording, with mynet pool ids, is accepted request by request (the state before each is kept)', async () => {
    let pools = 0;
    for (const [k, l] of lines.entries()) {
      before[k] = [await readFile(store.snapshotPath, 'utf8').catch(() => undefined), await readFile(store.journalPath, 'utf8')];
      const a = await post(l.path, bodyOf(k));
      expect(a.status, `${k} ${l.path} ${a.text}`).toBe(200);
      if (l.path === '/IpamDriver.RequestPool') poolIds.set(`pool-${++pools}`, (JSON.parse(a.text) as { PoolID: string }).PoolID);
    }
  });

  for (const r of [...routes.map((x) => x.path), '/NetworkDriver.NoSuchCall', '/../../etc/passwd']) {
    it(r, async () => {
      const seeds = seedsOf(r);
      const c = (counts[r] = { ok: 0, refused: 0 });
      let at: number | undefined;
      for (let i = 0; i < PER_ROUTE; i++) {
        const k = seeds[i % seeds.length] as number;
        // A refused request changes nothing (checked below); after an accepted one that wrote
        // state or ran host commands, start again.
        if (at !== k) await startOn(before[Math.min(k, RECORDED - 1)]);
        at = k;
        // Each recorded body once as it is, then mutations of them.
        const body = i < seeds.length ? bodyOf(k) : mutate(JSON.parse(bodyOf(k) || 'null') as Record<string, unknown> | null);
        const was = await files();
        const ops = exec.calls.length;
        const a = await post(r, body);
        expect([200, 404, 413, 500], `${r} ${body.slice(0, 200)}`).toContain(a.status);
        const json = JSON.parse(a.text) as Record<string, unknown>;
        expect(typeof json === 'object' && json !== null && !Array.isArray(json), a.text.slice(0, 200)).toBe(true);
        if (a.status === 200) {
          c.ok++;
          checkOps(ops);
          if (exec.calls.length !== ops || (await files()) !== was) at = undefined;
          continue;
        }
        c.refused++;
        expect(typeof json.Err === 'string' && json.Err.length > 0, a.text.slice(0, 200)).toBe(true);
        // A clear message: "<field>: <reason>" or a sentence, never a stack or "[object Object]".
        expect(json.Err as string, body.slice(0, 200)).not.toMatch(/\n\s+at |\[object Object\]|undefined:/);
        expect(exec.calls.length, `${r} ${body.slice(0, 200)} ran host commands but was refused`).toBe(ops);
        expect(await files(), `${r} ${body.slice(0, 200)} changed the state files but was refused`).toBe(was);
      }
      if (routes.some((x) => x.path === r)) expect(c.ok, `${r}: no request reached the success path`).toBeGreaterThan(0);
      else expect(c.ok, `${r} is no route`).toBe(0);
      expect(c.refused, `${r}: no request was refused`).toBeGreaterThan(0);
      // Still serving.
      expect((await post('/Plugin.Activate', '')).status).toBe(200);
    });
  }

  it('a body over the limit is 413 with {"Err"}, and the server goes on', async () => {
    const before = await files();
    const a = await post(
      '/NetworkDriver.CreateNetwork',
      JSON.stringify({ NetworkID: 'a'.repeat(64), Options: { x: 'y'.repeat(2 * 1024 * 1024) } }),
    );
    expect(a.status).toBe(413);
    expect(JSON.parse(a.text)).toHaveProperty('Err');
    expect(await files()).toBe(before);
    expect((await post('/Plugin.Activate', '')).status).toBe(200);
  });
});
