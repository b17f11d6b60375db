#!/usr/bin/env node
/**
 * `mynet`: the operator's view of the plugin, over its admin socket.
 *   mynet status | ports | doctor [--fix] | version | cluster forget <node> | cluster rotate-key   [--json] [--socket PATH]
 *   mynet policy apply -f FILE | policy ls | policy rm NAME
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { NamesView, NetworkView, PolicyView, PortView } from '../admin/views.js';
import type { DoctorResult } from '../plugin.js';
import type { ClusterStatus } from '../multihost/agent.js';
import { COLOUR, PLAIN, renderDoctor, renderPolicies, renderPorts, renderStatus } from './render.js';

const USAGE =
  'usage: mynet status|ports|doctor [--fix]|version|cluster forget <node>|cluster rotate-key|policy apply -f FILE|policy ls|policy rm NAME [--json] [--socket PATH]';

function call<T>(socketPath: string, method: string, path: string, body?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          // The plugin's own message ({"Err": ...}) is what the operator needs, not the JSON around it.
          let why = text.slice(0, 500);
          try {
            why = (JSON.parse(text) as { Err?: string }).Err ?? why;
          } catch {
            // not JSON: the text as it is
          }
          return reject(new Error(`the plugin answered HTTP ${res.statusCode}: ${why}`));
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          // A throw here would escape as an uncaught exception with a stack trace.
          reject(new Error(`the answer on ${socketPath} is not JSON; is it mynet's admin socket?`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('the plugin did not answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const json = args.includes('--json');
  const fix = args.includes('--fix');
  const si = args.indexOf('--socket');
  const socket = si >= 0 ? (args[si + 1] ?? '') : process.env.MYNET_ADMIN_SOCKET || '/run/mynet/admin.sock';
  // An empty socketPath would make node's http client connect to localhost:80 instead.
  if (si >= 0 && (socket === '' || socket.startsWith('--'))) {
    process.stderr.write(`mynet: --socket needs a path\n${USAGE}\n`);
    return 2;
  }
  const cmd = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--socket');
  const st = process.stdout.isTTY && !process.env.NO_COLOR ? COLOUR : PLAIN;
  const print = (v: unknown, text: () => string): void => {
    process.stdout.write(`${json ? JSON.stringify(v, null, 2) : text()}\n`);
  };
  try {
    switch (cmd) {
      case 'status': {
        const r = await call<{ networks: NetworkView[]; differences: number; names?: NamesView; cluster?: ClusterStatus }>(
          socket,
          'GET',
          '/status',
        );
        print(r, () => renderStatus(r.networks, r.differences, st, r.names, r.cluster));
        return 0;
      }
      case 'cluster': {
        const words = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--socket');
        if (words[1] === 'rotate-key' && words.length === 2) {
          const k = await call<{ publicKey: string }>(socket, 'POST', '/cluster/rotate-key');
          print(k, () => `new WireGuard public key ${k.publicKey}, published; the other hosts take it from etcd`);
          return 0;
        }
        const node = words[2];
        if (words[1] !== 'forget' || !node) {
          process.stderr.write(`${USAGE}\n`);
          return 2;
        }
        const r = await call<{ node: string; addresses: number; endpoints: number; memberships?: number }>(
          socket,
          'POST',
          `/cluster/forget?node=${encodeURIComponent(node)}`,
        );
        print(
          r,
          () =>
            `forgot node ${r.node}: ${r.addresses} address claim(s), ${r.endpoints} endpoint record(s) and ${r.memberships ?? 0} network membership(s) removed from etcd`,
        );
        return 0;
      }
      case 'policy': {
        const words = args.filter((a, i) => !a.startsWith('-') && args[i - 1] !== '--socket' && args[i - 1] !== '-f');
        const fi = args.indexOf('-f');
        const file = fi >= 0 ? args[fi + 1] : undefined;
        if (words[1] === 'apply' && file) {
          // The file is sent as it is: the plugin checks it, so the CLI and the plugin cannot disagree.
          let text: string;
          try {
            text = readFileSync(file === '-' ? 0 : file, 'utf8');
          } catch (err) {
            process.stderr.write(`mynet: cannot read ${file}: ${(err as Error).message}\n`);
            return 1;
          }
          const r = await call<{ applied: string[] }>(socket, 'POST', '/policies', text);
          print(r, () => `applied ${r.applied.join(', ')}`);
          return 0;
        }
        if (words[1] === 'ls') {
          const r = await call<{ policies: PolicyView[] }>(socket, 'GET', '/policies');
          print(r, () => renderPolicies(r.policies, st));
          return 0;
        }
        const name = words[2];
        if (words[1] === 'rm' && name) {
          const r = await call<{ removed: string }>(socket, 'DELETE', `/policies/${encodeURIComponent(name)}`);
          print(r, () => `removed ${r.removed}`);
          return 0;
        }
        process.stderr.write(`${USAGE}\n`);
        return 2;
      }
      case 'ports': {
        const r = await call<{ ports: PortView[] }>(socket, 'GET', '/ports');
        print(r, () => renderPorts(r.ports, st));
        return 0;
      }
      case 'doctor': {
        const r = await call<{ results: DoctorResult[] }>(socket, fix ? 'POST' : 'GET', fix ? '/doctor?fix=all' : '/doctor');
        print(r, () => renderDoctor(r.results, fix, st));
        // Non-zero while anything is left different, so scripts can alert on it.
        return r.results.every((x) => x.repaired) ? 0 : 3;
      }
      case 'version': {
        const r = await call<{ version: string; node: string }>(socket, 'GET', '/version');
        print(r, () => `mynet ${r.version} (node ${r.node})`);
        return 0;
      }
      default:
        process.stderr.write(`${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      process.stderr.write(`mynet: the plugin is not running (nothing answers on ${socket})\n`);
    } else if (code === 'EACCES') {
      process.stderr.write(`mynet: permission denied on ${socket} (the admin socket is root only)\n`);
    } else {
      process.stderr.write(`mynet: ${(err as Error).message}\n`);
    }
    return 1;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`mynet: ${String(err)}\n`);
    process.exit(1);
  },
);
