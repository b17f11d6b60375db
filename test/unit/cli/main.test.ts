/**
 * The `mynet` command as a process (the TypeScript source, run by vite-node), against a stand-in
 * admin server on a temp unix socket: which request each subcommand makes, its output (plain when
 * not on a TTY, --json), and its exit codes (0 ok, 1 plugin not running or failing, 2 usage,
 * 3 doctor differences left).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NO_NAMES } from '../../../src/admin/docker-names.js';
import { portsView, statusView } from '../../../src/admin/views.js';
import { PLAIN, renderDoctor, renderPorts, renderStatus } from '../../../src/cli/render.js';
import { diagnose } from '../../../src/doctor/diagnose.js';
import type { DoctorResult } from '../../../src/plugin.js';
import { VETH_E3, cleanKernel, fixtureState, withLink, withoutLink } from '../doctor/fixture.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const VITE_NODE = join(ROOT, 'node_modules/.bin/vite-node');
const CLI = join(ROOT, 'src/cli/main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mynet ARGS` with stdout and stderr as pipes (not a TTY). */
async function mynet(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa(VITE_NODE, [CLI, ...args], {
    reject: false,
    cwd: ROOT,
    env: { MYNET_ADMIN_SOCKET: '', NO_COLOR: '', ...env },
    timeout: 20_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const state = fixtureState();
const STATUS = { networks: statusView(state, NO_NAMES), differences: 0 };
const PORTS = { ports: portsView(state, NO_NAMES) };
const found = diagnose(
  state,
  withLink(withoutLink(cleanKernel(), VETH_E3), 'mn-orphan9', (l) => l),
);
const results = (repaired: (i: number) => boolean): DoctorResult[] => found.map((difference, i) => ({ difference, repaired: repaired(i) }));

let dir: string;
let socket: string;
let server: Server;
const seen: string[] = [];
/** What the stand-in answers, by "METHOD /path?query". */
let answers: Record<string, [number, string]>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mynet-cli-'));
  socket = join(dir, 'admin.sock');
  server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.push(key);
    const [status, body] = answers[key] ?? [404, JSON.stringify({ Err: `unknown admin route: ${key}` })];
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(socket, r));
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen.length = 0;
  answers = {
    'GET /status': [200, JSON.stringify(STATUS)],
    'GET /ports': [200, JSON.stringify(PORTS)],
    'GET /doctor': [200, JSON.stringify({ results: [] })],
    'POST /doctor?fix=all': [200, JSON.stringify({ results: [] })],
    'GET /version': [200, JSON.stringify({ version: '1.2.3', node: 'v20.0.0' })],
  };
});

describe('mynet', () => {
  it('status: GET /status, printed as renderStatus prints it, without colour when not on a TTY', async () => {
    const r = await mynet(['status', '--socket', socket]);
    expect(r).toEqual({ code: 0, stdout: renderStatus(STATUS.networks, 0, PLAIN), stderr: '' });
    expect(seen).toEqual(['GET /status']);
  });

  it('status --json: the admin answer as JSON; the socket from MYNET_ADMIN_SOCKET', async () => {
    const r = await mynet(['--json', 'status'], { MYNET_ADMIN_SOCKET: socket });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(JSON.stringify(STATUS)));
  });

  it('status with a cluster: this node and etcd, each cluster network, each member, after the names line', async () => {
    const cluster = {
      node: 'host-a',
      address: '198.18.0.1',
      etcd: 'up',
      networks: [{ cluster: 'blue', network: 'c38af9122a9a', synced: true, remote: 2 }],
      members: [
        { name: 'host-a', address: '198.18.0.1', up: true, endpoints: 1 },
        { name: 'host-b', address: '198.18.0.2', up: false, endpoints: 2 },
      ],
    };
    answers['GET /status'] = [200, JSON.stringify({ ...STATUS, cluster })];
    const r = await mynet(['status', '--socket', socket]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'cluster: node host-a 198.18.0.1, etcd up',
      '  cluster network blue (network c38af9122a9a): following etcd, 2 remote endpoint(s)',
      '  member host-a 198.18.0.1 up endpoints 1',
      '  member host-b 198.18.0.2 down endpoints 2',
    ]);
  });

  it('cluster forget <node>: POST /cluster/forget, the counts printed; without a node: usage, exit 2', async () => {
    answers['POST /cluster/forget?node=host-b'] = [200, JSON.stringify({ node: 'host-b', addresses: 3, endpoints: 2, memberships: 1 })];
    const r = await mynet(['cluster', 'forget', 'host-b', '--socket', socket]);
    expect(r).toEqual({
      code: 0,
      stdout: 'forgot node host-b: 3 address claim(s), 2 endpoint record(s) and 1 network membership(s) removed from etcd',
      stderr: '',
    });
    const u = await mynet(['cluster', 'forget', '--socket', socket]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/cluster forget <node>/);
    answers['POST /cluster/forget?node=host-a'] = [
      500,
      JSON.stringify({
        Err: 'node: host-a is present in the cluster (its lease is alive); stop it first, or wait for its lease to expire',
      }),
    ];
    const refused = await mynet(['cluster', 'forget', 'host-a', '--socket', socket]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/host-a is present in the cluster/);
  });

  it('ports, and ports --json', async () => {
    const r = await mynet(['ports', '--socket', socket]);
    expect(r).toEqual({ code: 0, stdout: renderPorts(PORTS.ports, PLAIN), stderr: '' });
    const j = await mynet(['ports', '--socket', socket, '--json']);
    expect(JSON.parse(j.stdout)).toEqual(JSON.parse(JSON.stringify(PORTS)));
  });

  it('doctor: GET /doctor only (changes nothing); exit 0 when clean', async () => {
    const r = await mynet(['doctor', '--socket', socket]);
    expect(r).toEqual({ code: 0, stdout: 'no differences: the kernel matches the state', stderr: '' });
    expect(seen).toEqual(['GET /doctor']);
  });

  it('doctor: exit 3 while differences remain', async () => {
    answers['GET /doctor'] = [200, JSON.stringify({ results: results(() => false) })];
    const r = await mynet(['doctor', '--socket', socket]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(
      renderDoctor(
        results(() => false),
        false,
        PLAIN,
      ),
    );
    const j = await mynet(['doctor', '--json', '--socket', socket]);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toEqual(JSON.parse(JSON.stringify({ results: results(() => false) })));
  });

  it('doctor --fix: POST /doctor?fix=all; exit 0 when all is repaired, 3 when a repair failed', async () => {
    answers['POST /doctor?fix=all'] = [200, JSON.stringify({ results: results(() => true) })];
    let r = await mynet(['doctor', '--fix', '--socket', socket]);
    expect(seen).toEqual(['POST /doctor?fix=all']);
    expect(r.code).toBe(0);
    expect(
      r.stdout
        .split('\n')
        .slice(1)
        .every((l) => l.endsWith('repaired') || l.endsWith('removed')),
    ).toBe(true);
    answers['POST /doctor?fix=all'] = [
      200,
      JSON.stringify({ results: results((i) => i !== 1).map((x, i) => (i === 1 ? { ...x, error: 'boom' } : x)) }),
    ];
    r = await mynet(['doctor', '--fix', '--socket', socket]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('repair failed: boom');
  });

  it('version', async () => {
    expect(await mynet(['version', '--socket', socket])).toEqual({ code: 0, stdout: 'mynet 1.2.3 (node v20.0.0)', stderr: '' });
  });

  it('no subcommand or an unknown one: usage, exit 2, nothing asked', async () => {
    for (const args of [[], ['bogus'], ['--json']]) {
      const r = await mynet([...args, '--socket', socket]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^usage: mynet status\|ports\|doctor/);
    }
    expect(seen).toEqual([]);
  });

  it('--socket without a path: usage, exit 2 (an empty path would mean localhost:80 to node)', async () => {
    for (const args of [
      ['status', '--socket'],
      ['status', '--socket', '--json'],
    ]) {
      const r = await mynet(args, { MYNET_ADMIN_SOCKET: socket });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^mynet: --socket needs a path\nusage: /);
    }
    expect(seen).toEqual([]);
  });

  it('nothing at the socket: exit 1, "the plugin is not running"', async () => {
    const gone = join(dir, 'nothing.sock');
    const r = await mynet(['status', '--socket', gone]);
    expect(r).toEqual({ code: 1, stdout: '', stderr: `mynet: the plugin is not running (nothing answers on ${gone})` });
  });

  it('a socket file left by a killed plugin (connection refused): the same', async () => {
    const stale = join(dir, 'stale.sock');
    // A process that listens, then dies without removing its socket.
    await new Promise<void>((done, fail) => {
      const p = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ]);
      p.once('exit', () => (existsSync(stale) ? done() : fail(new Error('no stale socket'))));
    });
    const r = await mynet(['ports', '--socket', stale]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`mynet: the plugin is not running (nothing answers on ${stale})`);
  });

  it("an error answer: exit 1 with the plugin's message", async () => {
    answers['GET /status'] = [500, JSON.stringify({ Err: 'doctor: no kernel snapshot available' })];
    const r = await mynet(['status', '--socket', socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mynet: the plugin answered HTTP 500: doctor: no kernel snapshot available');
  });

  it("an answer that is not JSON (not mynet's admin socket): exit 1 with a message, no stack trace", async () => {
    answers['GET /version'] = [200, '<html>hello</html>'];
    const r = await mynet(['version', '--socket', socket]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`mynet: the answer on ${socket} is not JSON; is it mynet's admin socket?`);
  });

  it('colour on a TTY (run under script(1)), none with NO_COLOR', async () => {
    const cmd = (env: string): string => `${env} ${VITE_NODE} ${CLI} status --socket ${socket}`;
    const tty = await execa('script', ['-qec', cmd(''), '/dev/null'], { reject: false, cwd: ROOT, env: { NO_COLOR: '' } });
    expect(tty.exitCode).toBe(0);
    expect(String(tty.stdout)).toContain('\u001b[32mhealth: ok');
    const off = await execa('script', ['-qec', cmd('NO_COLOR=1'), '/dev/null'], { reject: false, cwd: ROOT });
    expect(off.exitCode).toBe(0);
    expect(String(off.stdout)).not.toContain('\u001b[');
    expect(String(off.stdout)).toContain('health: ok');
  });
});
