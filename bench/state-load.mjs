/**
 * Time to load a state of 100 networks and 10 000 endpoints (one published port each) from
 * state.json: JSON parse, the record checks (src/store/records.ts) and building the State.
 * Usage: npm run build && node bench/state-load.mjs [root]  (root: a checkout with dist/; default this one)
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
const root = process.argv[2] ?? join(import.meta.dirname, '..');
const { FileStore } = await import(join(root, 'dist/store/file-store.js'));
const { parseNetworkOptions } = await import(join(root, 'dist/protocol/options.js'));
const dir = mkdtempSync(join(tmpdir(), 'mnt-loadbench-'));
const hex = (n) => n.toString(16).padStart(8, '0').repeat(8);
const networks = [], endpoints = [];
for (let i = 0; i < 100; i++) networks.push({ id: hex(i + 1), bridge: `mn-${hex(i + 1).slice(0, 12)}`, options: parseNetworkOptions({}), ipv4: [{ pool: `10.${i}.0.0/16`, gateway: `10.${i}.0.1/16` }], ipv6: [], createdAt: '2026-12-02T00:00:00.000Z' });
for (let i = 0; i < 10000; i++) { const id = hex(0x100000 + i); endpoints.push({ id, networkId: hex((i % 100) + 1), hostIf: `mnh${id.slice(0, 12)}`, containerIf: `mnc${id.slice(0, 12)}`, mac: '02:42:0a:00:00:02', address: `10.${i % 100}.${(i >> 8) & 255}.${(i & 255) || 2}/16`, ports: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 10000 + i }] }); }
writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, seq: 1, networks, endpoints, pools: [] }));
const times = [];
for (let r = 0; r < 15; r++) { const s = new FileStore({ dir, log: pino({ level: 'silent' }) }); const t = performance.now(); await s.load(); times.push(performance.now() - t); await s.close(); }
times.sort((a, b) => a - b);
console.log(`load of 100 networks + 10000 endpoints: median ${times[7].toFixed(1)} ms (min ${times[0].toFixed(1)})`);
rmSync(dir, { recursive: true, force: true });
