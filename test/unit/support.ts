/** Small shared pieces of the unit tier (not a test file). */
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { PluginError } from '../../src/errors.js';

/** A logger that writes nothing. */
export const silentLog: Logger = pino({ level: 'silent' });

/** Deterministic PRNG (mulberry32), so randomized tests fail the same way every time. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A hex id of `len` characters made from a small number, unique in its first 12 characters too. */
export const hexId = (n: number, len = 64): string => n.toString(16).padStart(4, '0').repeat(16).slice(0, len);

/** Every request a real dockerd 20.10 sent (copied from shared/fixtures, so the unit tier needs nothing outside the repository). */
export const DOCKERD_FIXTURE = resolve(import.meta.dirname, '../fixtures/dockerd-20.10/requests.jsonl');

/** Runs fn and returns the PluginError it throws; any other error goes on, and no error fails the test. */
export function errorOf(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PluginError) return err;
    throw err;
  }
  throw new Error('expected a PluginError, nothing was thrown');
}
