/**
 * A fake nft for the unit tier: an in-memory ruleset that applies typed changes
 * (src/plan/nft-change.ts) as one transaction each and refuses what real nft refuses: anything
 * in a table that does not exist, deleting or flushing what is absent, a rule in a missing chain
 * or naming a missing set, chain or counter, a map element without its value or with another
 * value than the one held, a jump to a missing chain, deleting a chain, set or counter that
 * something still refers to, changing a chain's hook. `dump()` answers what host/nft-json.ts
 * parses from `nft -j list table`, so a fake and a real table compare directly.
 *
 * FakeNftExecutor runs nft ops on it (other ops are recorded and succeed), honouring
 * absentTableOk as host/nft-run.ts does.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../../src/errors.js';
import type { Executor, IpOp } from '../../src/host/executor.js';
import type { NftTable } from '../../src/host/nft-json.js';
import type { NftCommand, NftObject } from '../../src/plan/nft-change.js';
import type { NftHook, NftSet } from '../../src/plan/nft-model.js';
import type { HostOp } from '../../src/plan/step.js';

interface Rule {
  readonly text: string;
  readonly comment: string;
}
interface Chain {
  readonly hook?: NftHook;
  rules: Rule[];
}
interface FakeTable {
  chains: Map<string, Chain>;
  sets: Map<string, { decl: NftSet; elements: Map<string, string | undefined> }>;
  counters: Set<string>;
}

const ENOENT = 'Error: Could not process rule: No such file or directory';
const EBUSY = 'Error: Could not process rule: Device or resource busy';
const EEXIST = 'Error: Could not process rule: File exists';

class Refused extends Error {}
const refuse = (why: string, what: string): never => {
  throw new Refused(`${why}\n${what}`);
};

const sameHook = (a?: NftHook, b?: NftHook): boolean => a?.type === b?.type && a?.hook === b?.hook && a?.prio === b?.prio;

/** Names a rule refers to: sets (@s), chains (jump/goto c), named counters. */
function refsOf(text: string): { sets: string[]; chains: string[]; counters: string[] } {
  return {
    sets: [...text.matchAll(/@([\w-]+)\b(?!,)/g)].map((m) => m[1] as string),
    chains: [...text.matchAll(/\b(?:jump|goto) ([\w-]+)/g)].map((m) => m[1] as string),
    // `counter name ip daddr map @m` names its counter through a map, not one called "ip".
    counters: [...text.matchAll(/\bcounter name (?!ip6? )"?([\w-]+)"?/g)].map((m) => m[1] as string),
  };
}
const jumpOf = (value: string | undefined): string | undefined => /^(?:jump|goto) ([\w-]+)$/.exec(value ?? '')?.[1];

export class FakeNft {
  private readonly tables = new Map<string, FakeTable>();

  /** Applies a change as one transaction: all of it or, with an error like nft's, nothing. */
  apply(table: string, commands: readonly NftCommand[]): void {
    const before = this.tables.get(table);
    const work = before ? structuredClone(before) : undefined;
    let t = work;
    try {
      for (const c of commands) t = this.one(t, c);
    } catch (err) {
      if (err instanceof Refused) throw new HostCommandError(['nft', '-f', '-'], 1, err.message);
      throw err;
    }
    if (t) this.tables.set(table, t);
    else this.tables.delete(table);
  }

  has(table: string): boolean {
    return this.tables.has(table);
  }

  private one(t: FakeTable | undefined, c: NftCommand): FakeTable | undefined {
    const o = c.object;
    if (o.obj === 'table') {
      if (c.verb === 'add') return t ?? { chains: new Map(), sets: new Map(), counters: new Set() };
      if (!t) return refuse(ENOENT, `${c.verb} table`);
      if (c.verb === 'flush') {
        for (const ch of t.chains.values()) ch.rules = [];
        for (const s of t.sets.values()) s.elements.clear();
        return t;
      }
      return c.verb === 'destroy' || c.verb === 'delete' ? undefined : t;
    }
    if (!t) return refuse(ENOENT, `${c.verb} ${o.obj}: no table`);
    if (c.verb === 'destroy') {
      // add-then-delete, as nft-text.ts writes it.
      this.one(t, { verb: 'add', object: o });
      return this.one(t, { verb: 'delete', object: o });
    }
    if (c.verb === 'add') this.add(t, o);
    else if (c.verb === 'flush') this.flush(t, o);
    else this.del(t, o);
    return t;
  }

  private add(t: FakeTable, o: NftObject): void {
    switch (o.obj) {
      case 'chain': {
        const have = t.chains.get(o.name);
        if (!have) t.chains.set(o.name, { ...(o.hook ? { hook: o.hook } : {}), rules: [] });
        else if (o.hook && !sameHook(have.hook, o.hook)) refuse(EEXIST, `add chain ${o.name}: its hook cannot change`);
        return;
      }
      case 'set': {
        const have = t.sets.get(o.set.name);
        if (!have) t.sets.set(o.set.name, { decl: o.set, elements: new Map() });
        else if (have.decl.kind !== o.set.kind || have.decl.type !== o.set.type || have.decl.interval !== o.set.interval)
          refuse(EEXIST, `add ${o.set.kind} ${o.set.name}: declared otherwise`);
        return;
      }
      case 'counter':
        t.counters.add(o.name);
        return;
      case 'rule': {
        const chain = t.chains.get(o.chain) ?? refuse(ENOENT, `add rule: no chain ${o.chain}`);
        const r = refsOf(o.rule.text);
        for (const s of r.sets) if (!t.sets.has(s)) refuse(ENOENT, `add rule: no set ${s}`);
        for (const ch of r.chains) if (!t.chains.has(ch)) refuse(ENOENT, `add rule: no chain ${ch}`);
        for (const n of r.counters) if (!t.counters.has(n)) refuse(ENOENT, `add rule: no counter ${n}`);
        chain.rules.push({ text: o.rule.text, comment: o.rule.id });
        return;
      }
      case 'element': {
        const s = t.sets.get(o.set) ?? refuse(ENOENT, `add element: no set ${o.set}`);
        for (const it of o.items) {
          if ((s.decl.kind === 'map') !== (it.value !== undefined))
            refuse(
              'Error: syntax error',
              `add element ${o.set} { ${it.key} }: ${s.decl.kind === 'map' ? 'a map element needs a value' : 'a set element has no value'}`,
            );
          const target = jumpOf(it.value);
          if (target !== undefined && !t.chains.has(target)) refuse(ENOENT, `add element: no chain ${target}`);
          if (s.elements.has(it.key) && s.elements.get(it.key) !== it.value)
            refuse(EBUSY, `add element ${o.set} { ${it.key} }: holds another value`);
          s.elements.set(it.key, it.value);
        }
        return;
      }
      case 'table':
        return;
    }
  }

  private flush(t: FakeTable, o: NftObject): void {
    if (o.obj === 'chain') (t.chains.get(o.name) ?? refuse(ENOENT, `flush chain ${o.name}`)).rules = [];
    else if (o.obj === 'set') (t.sets.get(o.set.name) ?? refuse(ENOENT, `flush set ${o.set.name}`)).elements.clear();
    else refuse('Error: syntax error', `flush ${o.obj}`);
  }

  private referenced(t: FakeTable, kind: 'sets' | 'chains' | 'counters', name: string): boolean {
    for (const ch of t.chains.values()) for (const r of ch.rules) if (refsOf(r.text)[kind].includes(name)) return true;
    if (kind === 'chains') for (const s of t.sets.values()) for (const v of s.elements.values()) if (jumpOf(v) === name) return true;
    return false;
  }

  private del(t: FakeTable, o: NftObject): void {
    switch (o.obj) {
      case 'chain':
        if (!t.chains.has(o.name)) refuse(ENOENT, `delete chain ${o.name}`);
        if (this.referenced(t, 'chains', o.name)) refuse(EBUSY, `delete chain ${o.name}: still referenced`);
        t.chains.delete(o.name); // its rules go with it
        return;
      case 'set':
        if (!t.sets.has(o.set.name)) refuse(ENOENT, `delete set ${o.set.name}`);
        if (this.referenced(t, 'sets', o.set.name)) refuse(EBUSY, `delete set ${o.set.name}: still referenced`);
        t.sets.delete(o.set.name);
        return;
      case 'counter':
        if (!t.counters.has(o.name)) refuse(ENOENT, `delete counter ${o.name}`);
        if (this.referenced(t, 'counters', o.name)) refuse(EBUSY, `delete counter ${o.name}: still referenced`);
        t.counters.delete(o.name);
        return;
      case 'element': {
        const s = t.sets.get(o.set) ?? refuse(ENOENT, `delete element: no set ${o.set}`);
        for (const it of o.items) if (!s.elements.has(it.key)) refuse(ENOENT, `delete element ${o.set} { ${it.key} }`);
        for (const it of o.items) s.elements.delete(it.key);
        return;
      }
      case 'rule':
        refuse('Error: syntax error', 'delete rule needs a handle');
        return;
      case 'table':
        return;
    }
  }

  /** The table as host/nft-json.ts reads it from real nft (undefined: no such table); elements sorted. */
  dump(table: string): NftTable | undefined {
    const t = this.tables.get(table);
    if (!t) return undefined;
    return {
      chains: new Set(t.chains.keys()),
      hooks: new Map([...t.chains].flatMap(([n, c]) => (c.hook ? [[n, { ...c.hook, policy: 'accept' }] as const] : []))),
      rules: new Map([...t.chains].map(([n, c]) => [n, c.rules.map((r) => r.comment)])),
      sets: new Map([...t.sets].map(([n, s]) => [n, { kind: s.decl.kind, type: s.decl.type, interval: s.decl.interval }])),
      elements: new Map([...t.sets].map(([n, s]) => [n, [...s.elements].map(([k, v]) => (v === undefined ? k : `${k} : ${v}`)).sort()])),
    };
  }

  counters(table: string): string[] {
    return [...(this.tables.get(table)?.counters ?? [])].sort();
  }
}

/** An Executor whose nft is a FakeNft; every other op is recorded and succeeds. */
export class FakeNftExecutor implements Executor {
  readonly others: HostOp[] = [];
  constructor(readonly nft = new FakeNft()) {}

  run(op: HostOp, _log: Logger): Promise<void> {
    return new Promise((resolve) => {
      if (op.kind !== 'nft') this.others.push(op);
      else {
        try {
          this.nft.apply(op.table, op.commands);
        } catch (err) {
          // As host/nft-run.ts: a teardown that failed while its table is absent had nothing left to remove.
          if (!(op.absentTableOk && !this.nft.has(op.table))) throw err;
        }
      }
      resolve();
    });
  }

  runIpBatch(ops: readonly IpOp[], _log: Logger): Promise<{ index: number; error: unknown } | undefined> {
    this.others.push(...ops);
    return Promise.resolve(undefined);
  }
}
