// `npm run bench` / `make bench`: every benchmark, one after another, each printing its own table
// (mynet and the bridge driver side by side where both apply), then one summary of every goal
// from this run. BENCH_ONLY=plugin,dns runs a subset. Figures and method: BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table } from './lib.mjs';

const ALL = ['plugin', 'load', 'ports', 'docker-run', 'containers', 'dns', 'cluster-sim', 'cluster-throughput', 'cluster-plugin', 'names-convergence', 'policy'];
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'mnt-bench-goals-'));
const goals = join(dir, 'goals.jsonl');
const failed = [];
try {
  for (const name of ALL.filter((n) => !only || only.includes(n))) {
    console.log(`\n== bench/${name}.mjs (${new Date().toISOString()})`);
    const r = spawnSync(process.execPath, [`bench/${name}.mjs`], { stdio: 'inherit', env: { ...process.env, BENCH_GOALS: goals } });
    if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
  }
  let rows = [];
  try {
    rows = readFileSync(goals, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err; // no benchmark recorded a goal
  }
  console.log('\n== goals of this run\n');
  console.log(table(['figure', 'mynet', 'bridge', 'goal', 'met'], rows.map((g) => [g.figure, g.mynet, g.bridge, g.target, g.met ? 'yes' : 'NO'])));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed.length) {
  console.error(`\nbenchmarks that failed: ${failed.join(', ')}`);
  process.exit(1);
}
