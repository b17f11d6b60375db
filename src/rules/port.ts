/** Port numbers, as a request and the journal carry them. */
import { invalid } from '../errors.js';

export const PORT_MAX = 65_535;

/** A whole port number from `min` (1, or 0 where "any" is meant) to 65535. */
export function checkPort(field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > PORT_MAX)
    throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not a port number`);
  return v;
}
