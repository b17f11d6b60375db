/**
 * The outer shape of the state files, checked by hand: two small fixed shapes, read once at start,
 * where importing and compiling ajv cost the plugin ~70 ms before its socket could answer. The
 * records inside are checked field by field in records.ts, with the checks requests get. Each
 * check returns undefined when the value fits, or where and why it does not.
 */
import type { Change } from '../driver/state.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSeq = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** A list of objects each with a string id. */
function recordsProblem(v: unknown, field: string): string | undefined {
  if (!Array.isArray(v)) return `/${field} must be an array`;
  const bad = v.findIndex((r) => !isObject(r) || typeof r.id !== 'string');
  return bad < 0 ? undefined : `/${field}/${bad} must be an object with a string id`;
}

export function snapshotProblem(data: unknown): string | undefined {
  if (!isObject(data)) return '/ must be an object';
  if (data.version !== 1) return '/version must be 1';
  if (!isSeq(data.seq, 0)) return '/seq must be an integer >= 0';
  for (const f of ['networks', 'endpoints', 'pools']) {
    const p = recordsProblem(data[f], f);
    if (p) return p;
  }
  if (data.departures !== undefined && (!Array.isArray(data.departures) || !data.departures.every(isObject)))
    return '/departures must be an array of objects';
  if (data.policies !== undefined && (!Array.isArray(data.policies) || !data.policies.every(isObject)))
    return '/policies must be an array of objects';
  return undefined;
}

export function isJournalEntry(data: unknown): data is { seq: number; changes: Change[] } {
  return (
    isObject(data) &&
    isSeq(data.seq, 1) &&
    Array.isArray(data.changes) &&
    data.changes.every((c) => isObject(c) && typeof c.op === 'string')
  );
}
