/**
 * No import circles in src/ (type-only imports included): a circle means two modules that can
 * only be understood together. The layers' direction itself is an ESLint rule (eslint.config.js).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** Module → the modules of src/ it imports (relative specifiers only; .js resolves to .ts). */
export function importGraph(files: readonly string[], read: (f: string) => string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = [...read(f).matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) =>
      resolve(dirname(f), (m[1] as string).replace(/\.js$/, '.ts')),
    );
    graph.set(f, deps);
  }
  return graph;
}

/** Every circle, each as the list of modules on it (depth-first, colours). */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') found.push(stack.slice(stack.indexOf(d)));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('imports', () => {
  it('the circle finder finds a circle of three and none in a line', () => {
    expect(
      circles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
    expect(
      circles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('src/ has no import circle', () => {
    const files = sources(SRC);
    const graph = importGraph(files, (f) => readFileSync(f, 'utf8'));
    expect(graph.size).toBe(files.length);
    // The graph is real: plugin.ts imports the driver.
    expect(graph.get(join(SRC, 'plugin.ts'))).toContain(join(SRC, 'driver/network.ts'));
    expect(circles(graph).map((c) => c.map((f) => relative(SRC, f)).join(' -> '))).toEqual([]);
  });
});
