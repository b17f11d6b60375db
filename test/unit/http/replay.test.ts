/**
 * The protocol tier: a real Plugin behind the real Express app on a real unix socket, fed every
 * request a real dockerd 20.10 sent (test/fixtures/dockerd-20.10/requests.jsonl), the way
 * dockerd sends them (POST, Accept only, no Content-Type, empty body for no-argument calls).
 * The host is a RecordingExecutor, so nothing is changed on this machine.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, type IncomingHttpHeaders, type Server, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/http/app.js';
import { listenUnix } from '../../../src/http/socket.js';
import { parseIp } from '../../../src/ip/address.js';
import { formatCidr, parseCidr } from '../../../src/ip/cidr.js';
import { DOCKERD_FIXTURE, silentLog } from '../support.js';
import { testPlugin } from '../../helpers/test-plugin.js';

interface FixtureLine {
  path: string;
  contentType: string | null;
  accept: string;
  body: Record<string, unknown> | null;
}
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown>;
}

const FIXTURE = DOCKERD_FIXTURE;
const fixture: FixtureLine[] = readFileSync(FIXTURE, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as FixtureLine);
const ACCEPT = 'application/vnd.docker.plugins.v1.2+json';
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

let tmp: string;
let socketPath: string;
let server: Server;
let agent: Agent;
const { plugin, state, exec } = testPlugin({ pools: '10.200.0.0/16/24,fd42:4d4e::/48/64' });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mnt-'));
  socketPath = join(tmp, 'mynet.sock');
  server = createServer(createApp({ plugin, log: silentLog }));
  await listenUnix(server, socketPath);
  agent = new Agent({ keepAlive: true }); // as Go's client: one connection, reused
});

afterAll(async () => {
  agent?.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await rm(tmp, { recursive: true, force: true });
});

/** One POST over the unix socket; the body is sent as given, with no Content-Type. */
/** Where a POST goes: the 20.10 replay's socket unless told otherwise. */
interface Target {
  readonly socketPath: string;
  readonly agent: Agent;
}

function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string | number> = { Accept: ACCEPT },
  to?: Target,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = request(
      {
        socketPath: to?.socketPath ?? socketPath,
        agent: to?.agent ?? agent,
        method: 'POST',
        path,
        headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          settled = true;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown>;
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            reject(new Error(`${path}: answer is not JSON: ${JSON.stringify(text.slice(0, 200))}`));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    // A server that answers early (413) may stop reading: an error after the answer is not ours to report.
    req.on('error', (err) => {
      if (!settled) reject(err);
    });
    req.end(body);
  });
}

/** The body exactly as dockerd sends it: json.NewEncoder output (with a newline), or nothing. */
const wire = (body: Record<string, unknown> | null): string => (body === null ? '' : `${JSON.stringify(body)}\n`);

/** The first-appearance order of the recording plugin's pool ids ("pool-1", ...). */
function poolIdsOf(lines: readonly FixtureLine[]): string[] {
  const ids: string[] = [];
  for (const l of lines) {
    const id = l.body?.PoolID;
    if (typeof id === 'string' && !ids.includes(id)) ids.push(id);
  }
  return ids;
}
const fixturePoolIds = poolIdsOf(fixture);

function expectOk(a: Answer, what: string): void {
  expect(a.status, `${what}: ${a.text}`).toBe(200);
  expect(typeof a.json, what).toBe('object');
  expect(a.json, what).not.toBeNull();
  expect(a.json.Err, `${what} carries an Err`).toBeUndefined();
}
function expectEmpty(a: Answer, what: string): void {
  expectOk(a, what);
  expect(a.json, what).toEqual({});
}

/**
 * Sends every recorded request in order (the recording plugin's pool ids mapped to ours) and
 * checks each answer by the protocol rules; returns the answers and our pool ids in order.
 */
async function replay(
  lines: readonly FixtureLine[],
  send: (path: string, body: string, headers: Record<string, string>) => Promise<Answer>,
): Promise<{ answers: { line: FixtureLine; answer: Answer }[]; ourPoolIds: string[] }> {
  const ourPoolIds: string[] = [];
  const poolPrefix = new Map<string, number>(); // our PoolID -> prefix length
  const internalNetworks = new Set<string>();
  const v6OnlyNetworks = new Set<string>(); // dockerd 28: --ipv4=false, no IPv4Data
  const answers: { line: FixtureLine; answer: Answer }[] = [];
  for (const [i, line] of lines.entries()) {
    const what = `line ${i + 1} ${line.path}`;
    let body = line.body === null ? null : { ...line.body };
    if (body && typeof body.PoolID === 'string') {
      const mapped = ourPoolIds[poolIdsOf(lines).indexOf(body.PoolID)];
      expect(mapped, `${what}: ${body.PoolID} has no pool of ours`).toBeDefined();
      body.PoolID = mapped;
    }
    let answer = await send(line.path, wire(body), { Accept: line.accept });

    switch (line.path) {
      case '/Plugin.Activate':
        expectOk(answer, what);
        expect(answer.json.Implements).toEqual(expect.arrayContaining(['NetworkDriver', 'IpamDriver']));
        break;
      case '/NetworkDriver.GetCapabilities':
        expectOk(answer, what);
        expect(answer.json.Scope).toBe('local');
        expect(['local', undefined]).toContain(answer.json.ConnectivityScope);
        break;
      case '/IpamDriver.GetCapabilities':
        expectOk(answer, what);
        break;
      case '/IpamDriver.GetDefaultAddressSpaces':
        expectOk(answer, what);
        expect(answer.json.LocalDefaultAddressSpace).toEqual(expect.any(String));
        expect(answer.json.GlobalDefaultAddressSpace).toEqual(expect.any(String));
        break;
      case '/NetworkDriver.CreateNetwork': {
        const options = (body?.Options ?? {}) as Record<string, unknown>;
        const generic = (options['com.docker.network.generic'] ?? {}) as Record<string, string>;
        if ('mynet.custom' in generic) {
          // mynet refuses unknown mynet.* keys: dockerd shows this to the user.
          expect(answer.status, what).toBe(500);
          expect(Object.keys(answer.json)).toEqual(['Err']);
          expect(answer.json.Err).toMatch(/mynet\.custom/);
          expect(answer.json.Err).toMatch(/mynet\.isolate/);
          expect(answer.json.Err).toMatch(/mynet\.dns/);
          const rest = Object.fromEntries(Object.entries(generic).filter(([k]) => k !== 'mynet.custom'));
          body = { ...body, Options: { ...options, 'com.docker.network.generic': rest } };
          answer = await send(line.path, wire(body), { Accept: line.accept });
        }
        expectEmpty(answer, what);
        if (options['com.docker.network.internal'] === true) internalNetworks.add(body?.NetworkID as string);
        if (((body?.IPv4Data ?? []) as unknown[]).length === 0) v6OnlyNetworks.add(body?.NetworkID as string);
        break;
      }
      case '/IpamDriver.RequestPool': {
        expectOk(answer, what);
        const { PoolID, Pool, Data } = answer.json as { PoolID: string; Pool: string; Data: unknown };
        expect(PoolID, what).toEqual(expect.any(String));
        expect(PoolID.length).toBeGreaterThan(0);
        expect(ourPoolIds).not.toContain(PoolID);
        const parsed = parseCidr(Pool);
        expect(parsed.ok, `${what}: ${Pool}`).toBe(true);
        if (!parsed.ok) break;
        expect(formatCidr(parsed.cidr), `${what}: canonical`).toBe(Pool);
        expect(parsed.cidr.family).toBe(body?.V6 ? 6 : 4);
        const asked = body?.Pool as string;
        if (asked) {
          const a = parseCidr(asked);
          expect(a.ok && formatCidr(a.cidr)).toBe(Pool);
        }
        expect(typeof Data === 'object' || Data === undefined).toBe(true);
        ourPoolIds.push(PoolID);
        poolPrefix.set(PoolID, parsed.cidr.prefix);
        break;
      }
      case '/IpamDriver.RequestAddress': {
        expectOk(answer, what);
        const address = answer.json.Address as string;
        const parsed = parseCidr(address);
        expect(parsed.ok, `${what}: ${address} is a CIDR`).toBe(true);
        if (!parsed.ok) break;
        expect(parsed.cidr.prefix, `${what}: ${address} has the pool's prefix length`).toBe(poolPrefix.get(body?.PoolID as string));
        expect(parsed.cidr.prefix).not.toBe(parsed.addr.family === 4 ? 32 : 128);
        const asked = body?.Address as string;
        if (asked) expect(address.split('/')[0]).toBe(asked);
        break;
      }
      case '/NetworkDriver.CreateEndpoint': {
        expectOk(answer, what);
        const iface = (body?.Interface ?? {}) as Record<string, string>;
        const out = (answer.json.Interface ?? {}) as Record<string, string>;
        // Never a field dockerd set, even with the same value.
        for (const k of ['Address', 'AddressIPv6', 'MacAddress']) {
          if (iface[k]) expect(out[k] ?? '', `${what}: echoes ${k}`).toBe('');
        }
        if (iface.MacAddress) {
          expect(answer.json.Interface === undefined || Object.values(out).every((v) => v === '')).toBe(true);
        } else {
          expect(out.MacAddress, what).toMatch(MAC);
        }
        break;
      }
      case '/NetworkDriver.Join': {
        expectOk(answer, what);
        const r = answer.json as {
          InterfaceName?: { SrcName?: string; DstPrefix?: string };
          Gateway?: string;
          GatewayIPv6?: string;
          DisableGatewayService?: boolean;
        };
        expect(r.InterfaceName?.SrcName, what).toEqual(expect.stringMatching(/^\S{1,15}$/));
        expect(r.InterfaceName?.DstPrefix).toBe('eth');
        if (internalNetworks.has(body?.NetworkID as string)) {
          expect(r.Gateway, what).toBeUndefined();
          expect(r.GatewayIPv6, what).toBeUndefined();
          expect(r.DisableGatewayService).toBe(true);
        } else if (v6OnlyNetworks.has(body?.NetworkID as string)) {
          // No IPv4 on the network (dockerd 28, --ipv4=false): an IPv6 gateway only.
          expect(r.Gateway, what).toBeUndefined();
          expect(parseIp(r.GatewayIPv6 ?? '')?.family, what).toBe(6);
        } else {
          expect(r.Gateway, what).toEqual(expect.any(String));
          expect(r.Gateway).not.toContain('/');
          expect(parseIp(r.Gateway as string)?.family).toBe(4);
          if (r.GatewayIPv6 !== undefined) {
            expect(r.GatewayIPv6).not.toContain('/');
            expect(parseIp(r.GatewayIPv6)?.family).toBe(6);
          }
        }
        break;
      }
      case '/NetworkDriver.EndpointOperInfo':
        expectOk(answer, what);
        expect(typeof answer.json.Value).toBe('object');
        break;
      case '/NetworkDriver.ProgramExternalConnectivity':
      case '/NetworkDriver.RevokeExternalConnectivity':
        expectOk(answer, what);
        break;
      case '/NetworkDriver.Leave':
      case '/NetworkDriver.DeleteEndpoint':
      case '/NetworkDriver.DeleteNetwork':
      case '/IpamDriver.ReleaseAddress':
      case '/IpamDriver.ReleasePool':
        expectEmpty(answer, what);
        break;
      default:
        throw new Error(`${what}: the test does not know this path`);
    }
    answers.push({ line, answer });
  }
  return { answers, ourPoolIds };
}

describe('replaying dockerd 20.10', () => {
  const ourPoolIds: string[] = [];
  const answers: { line: FixtureLine; answer: Answer }[] = [];

  it('the fixture is what this test expects', () => {
    expect(fixture).toHaveLength(60);
    for (const l of fixture) {
      expect(l.contentType).toBeNull();
      expect(l.accept).toBe(ACCEPT);
    }
    expect(fixturePoolIds).toEqual(['pool-1', 'pool-2', 'pool-3']);
  });

  it('answers every recorded request by the protocol rules', async () => {
    const r = await replay(fixture, post);
    answers.push(...r.answers);
    ourPoolIds.push(...r.ourPoolIds);
    expect(answers).toHaveLength(fixture.length);
    expect(ourPoolIds).toHaveLength(3);
  });

  it('the net_full gateway, aux and container addresses are the ones dockerd asked for', () => {
    const addr = answers.filter((a) => a.line.path === '/IpamDriver.RequestAddress').map((a) => a.answer.json.Address);
    expect(addr).toEqual(['10.200.0.1/24', '10.150.0.254/16', '10.150.0.10/16', 'fd00:150::1/64', '10.150.5.20/16', 'fd00:150::20/64']);
    const join = answers.find((a) => a.line.path === '/NetworkDriver.Join')?.answer.json;
    expect(join).toMatchObject({ Gateway: '10.150.0.254', GatewayIPv6: 'fd00:150::2' });
    const created = answers.filter((a) => a.line.path === '/NetworkDriver.CreateEndpoint').map((a) => a.answer.json);
    expect(created[0]).toEqual({}); // c1 came with a MAC
    expect(created.slice(1).map((c) => Object.keys(c.Interface ?? {}))).toEqual([['MacAddress'], ['MacAddress']]);
  });

  it('the host saw a bridge per network, a veth per endpoint, and deletes at the end', () => {
    expect(exec.calls.every((c) => c.ok)).toBe(true);
    const lines = exec.lines;
    const bridges = lines.flatMap((l) => /^ip link add name (\S+) .*type bridge$/.exec(l)?.slice(1) ?? []);
    expect(bridges).toEqual(['mn-8f19a07e80fe', 'mn-888d523846ae', 'mybr0', 'mn-3c33f0178f27', 'mn-4401376d04fa']);
    const veths = lines.flatMap((l) => /^ip link add name (\S+) .* master (\S+) .*type veth peer name (\S+)/.exec(l)?.slice(1) ?? []);
    expect(veths).toEqual([
      'mnheaa9b94eff48',
      'mybr0',
      'mnceaa9b94eff48',
      'mnhc22c4d431a80',
      'mn-4401376d04fa',
      'mncc22c4d431a80',
      'mnhf2a3ada4b4f9',
      'mn-3c33f0178f27',
      'mncf2a3ada4b4f9',
    ]);
    // c1 kept its MAC; the others got ours.
    expect(lines.find((l) => l.includes('peer name mnceaa9b94eff48'))).toContain('address 02:42:0a:96:05:14');

    const index = (re: RegExp): number[] => lines.flatMap((l, i) => (re.test(l) ? [i] : []));
    const lastCreate = Math.max(...index(/^ip link add name/));
    for (const name of [...bridges, 'mnheaa9b94eff48', 'mnhc22c4d431a80', 'mnhf2a3ada4b4f9']) {
      // A veth is retired (off its bridge) at DeleteEndpoint and deleted with the next reap.
      const deletes = index(new RegExp(`^ip link (del ${name.replace('.', '\\.')} |set dev ${name} down group retired)`));
      // Each link has a "remove leftover" before its create and a delete afterwards.
      expect(deletes.length, name).toBeGreaterThanOrEqual(2);
      expect(Math.max(...deletes), name).toBeGreaterThan(index(new RegExp(`^ip link add name ${name} `))[0] ?? Infinity);
    }
    // The bridges go only after every endpoint was created, and the last thing is the hook's removal.
    const bridgeDeletes = bridges.map((b) => Math.max(...index(new RegExp(`^ip link del ${b} `))));
    for (const d of bridgeDeletes) expect(d).toBeGreaterThan(lastCreate);
    expect(index(/^ip link del group retired/).length).toBeGreaterThanOrEqual(3);
    expect(index(/^forward-hook ensure$/).length).toBeGreaterThanOrEqual(1);
    expect(index(/^forward-hook remove$/)).toHaveLength(1);
    expect(lines.at(-1)).toBe('forward-hook remove');
  });

  it('ends with no networks, endpoints or pools', () => {
    expect(state.networks.size).toBe(0);
    expect(state.endpoints.size).toBe(0);
    expect(state.pools.size).toBe(0);
    expect(plugin.state).toBe(state);
  });
});

/**
 * The newer engines, recorded with scripts/record-engine.sh (test/fixtures/dockerd-26.1 and
 * dockerd-28.5, README in each): the same commands as 20.10 plus what is new in them. Each gets
 * a Plugin and a socket of its own, and every request must be answered by the same rules.
 */
const NEWER = [
  { engine: '26.1', count: 64 },
  { engine: '28.5', count: 80 },
] as const;

describe.each(NEWER)('replaying dockerd $engine', ({ engine, count }) => {
  const lines: FixtureLine[] = readFileSync(join(dirname(FIXTURE), '..', `dockerd-${engine}`, 'requests.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as FixtureLine);
  const { plugin: pl, state: st, exec: ex } = testPlugin({ pools: '10.200.0.0/16/24,fd42:4d4e::/48/64' });
  let dir = '';
  let srv: Server | undefined;
  let to: Target | undefined;
  let answers: { line: FixtureLine; answer: Answer }[] = [];
  const bodies = (path: string): Record<string, unknown>[] => lines.filter((l) => l.path === path).map((l) => l.body ?? {});

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mnt-'));
    srv = createServer(createApp({ plugin: pl, log: silentLog }));
    await listenUnix(srv, join(dir, 'mynet.sock'));
    to = { socketPath: join(dir, 'mynet.sock'), agent: new Agent({ keepAlive: true }) };
  });
  afterAll(async () => {
    to?.agent.destroy();
    await new Promise<void>((resolve) => (srv ? srv.close(() => resolve()) : resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('the recording is what this test expects', () => {
    expect(lines).toHaveLength(count);
    for (const l of lines) {
      expect(l.contentType).toBeNull();
      expect(l.accept).toBe(ACCEPT);
    }
    expect(poolIdsOf(lines)).toEqual(['pool-1', 'pool-2', 'pool-3']);
    // New since 25: endpoint sysctls (docker run --network name=...,driver-opt=...) reach the driver.
    const sysctls = bodies('/NetworkDriver.CreateEndpoint').map(
      (b) => (b.Options as Record<string, unknown>)['com.docker.network.endpoint.sysctls'],
    );
    expect(sysctls.filter(Boolean)).toEqual(['net.ipv4.conf.ifname.log_martians=1']);
  });

  it('answers every recorded request by the protocol rules', async () => {
    answers = (await replay(lines, (p, b, h) => post(p, b, h, to))).answers;
    expect(answers).toHaveLength(count);
  });

  it('what is new in the engine is answered as the bridge driver would', () => {
    const nets = bodies('/NetworkDriver.CreateNetwork').map((b) => b.Options as Record<string, unknown>);
    const pec = bodies('/NetworkDriver.ProgramExternalConnectivity').map((b) => b.Options as Record<string, unknown>);
    if (engine === '28.5') {
      // enable_ipv4 on every network; the one made with --ipv4=false has no IPv4Data at all.
      expect(nets.map((o) => o['com.docker.network.enable_ipv4'])).toEqual([true, true, true, true, true, false]);
      const v6only = answers.find(
        (a) => a.line.path === '/NetworkDriver.CreateNetwork' && (a.line.body?.IPv4Data as unknown[]).length === 0,
      );
      expect(v6only?.answer.json).toEqual({});
      const join6 = answers.find((a) => a.line.path === '/NetworkDriver.Join' && a.line.body?.NetworkID === v6only?.line.body?.NetworkID)
        ?.answer.json;
      expect(join6?.Gateway).toBeUndefined();
      expect(join6).toMatchObject({ GatewayIPv6: 'fd00:153::1' });
      // A private option of dockerd's bridge driver, now sent to every driver: ignored.
      for (const o of pec) expect(o['com.docker.network.driver.private.no_proxy_6to4']).toBe(false);
    } else {
      expect(nets.every((o) => !('com.docker.network.enable_ipv4' in o))).toBe(true);
      expect(pec.every((o) => !('com.docker.network.driver.private.no_proxy_6to4' in o))).toBe(true);
    }
    expect(ex.calls.every((c) => c.ok)).toBe(true);
  });

  it('ends with no networks, endpoints or pools', () => {
    expect([st.networks.size, st.endpoints.size, st.pools.size]).toEqual([0, 0, 0]);
  });
});

describe('protocol errors over the socket', () => {
  it('an unknown path is 404 with {"Err"}', async () => {
    const a = await post('/NetworkDriver.NoSuchThing', '{}\n');
    expect(a.status).toBe(404);
    expect(Object.keys(a.json)).toEqual(['Err']);
    expect(a.json.Err).toMatch(/NoSuchThing/);
    const b = await post('/', '');
    expect(b.status).toBe(404);
    expect(b.json.Err).toEqual(expect.any(String));
  });

  it('invalid JSON is 500 with an Err mentioning JSON', async () => {
    for (const text of ['{', '{"PoolID": }', 'nope', '{"a":1}}']) {
      const a = await post('/IpamDriver.RequestPool', text);
      expect(a.status, text).toBe(500);
      expect(Object.keys(a.json)).toEqual(['Err']);
      expect(a.json.Err).toMatch(/JSON/);
    }
  });

  it('a body over the limit is 413 with {"Err"}', async () => {
    const big = `{"NetworkID":"${'a'.repeat(9 * 1024 * 1024)}"}\n`;
    const a = await post('/NetworkDriver.CreateNetwork', big);
    expect(a.status).toBe(413);
    expect(Object.keys(a.json)).toEqual(['Err']);
    expect(a.json.Err).toMatch(/too large/);
    // The connection (or a new one) still works afterwards.
    const b = await post('/Plugin.Activate', '');
    expect(b.status).toBe(200);
  });

  it('wrong field types are 500 naming the field', async () => {
    const cases: [string, unknown, string][] = [
      ['/IpamDriver.RequestPool', { Pool: '', V6: 'yes' }, 'V6'],
      ['/IpamDriver.RequestPool', { Pool: 10 }, 'Pool'],
      ['/IpamDriver.RequestAddress', { PoolID: 'x', Options: { RequestAddressType: 1 } }, 'Options.RequestAddressType'],
      ['/IpamDriver.ReleaseAddress', { PoolID: 'x' }, 'Address'],
      ['/NetworkDriver.CreateNetwork', { NetworkID: ['x'] }, 'NetworkID'],
      ['/NetworkDriver.CreateNetwork', { NetworkID: 'a'.repeat(64), IPv4Data: [{ Gateway: '10.0.0.1/24' }] }, 'IPv4Data.0.Pool'],
      [
        '/NetworkDriver.CreateEndpoint',
        { NetworkID: 'a'.repeat(64), EndpointID: 'b'.repeat(64), Interface: { Address: 7 } },
        'Interface.Address',
      ],
      ['/NetworkDriver.Join', { NetworkID: 'a'.repeat(64), EndpointID: 'b'.repeat(64), SandboxKey: false }, 'SandboxKey'],
      ['/NetworkDriver.DeleteNetwork', {}, 'NetworkID'],
      ['/NetworkDriver.CreateNetwork', null, 'NetworkID'], // an empty body means no arguments
    ];
    for (const [path, body, field] of cases) {
      const a = await post(path, body === null ? '' : JSON.stringify(body));
      expect(a.status, `${path} ${field}`).toBe(500);
      expect(Object.keys(a.json)).toEqual(['Err']);
      const err = String(a.json.Err);
      expect(err.startsWith(`${field}: `), err).toBe(true);
    }
  });

  it('errors of decisions are 500 with the message (unknown pool, bad option)', async () => {
    const a = await post('/IpamDriver.RequestAddress', JSON.stringify({ PoolID: 'nope', Address: '', Options: null }));
    expect(a.status).toBe(500);
    expect(a.json.Err).toMatch(/^PoolID: no mynet pool/);
    const b = await post('/NetworkDriver.Join', JSON.stringify({ NetworkID: 'a'.repeat(64), EndpointID: 'b'.repeat(64) }));
    expect(b.status).toBe(500);
    expect(b.json.Err).toMatch(/^NetworkID: no mynet network/);
  });

  it('a Content-Type header does not change anything', async () => {
    const a = await post('/IpamDriver.GetDefaultAddressSpaces', '', { Accept: ACCEPT, 'Content-Type': 'text/plain' });
    expect(a.status).toBe(200);
    const b = await post('/NetworkDriver.EndpointOperInfo', JSON.stringify({ NetworkID: 'a'.repeat(64), EndpointID: 'b'.repeat(64) }), {
      'Content-Type': 'application/json',
    });
    expect(b.status).toBe(200);
    expect(b.json).toEqual({ Value: {} });
  });

  it('nothing above changed the state', () => {
    expect(state.networks.size + state.endpoints.size + state.pools.size).toBe(0);
  });
});
