/**
 * This host's node id (issue 22, findings 5 and 15): made once, at the first start with a
 * cluster, and kept in `<state dir>/node-id` (0600), so a restart, a reboot or a rename keeps
 * it. A missing file is a new host (or an upgrade from a mynet without ids): a new id is made and
 * written atomically. A file that holds anything but an id stops the start naming the file: a
 * guessed new id would make this host a stranger to its own records in etcd.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import { NODE_ID } from '../rules/names.js';

export const NODE_ID_FILE = 'node-id';

export interface NodeIdResult {
  readonly id: string;
  /** True when this start made it (no file before). */
  readonly made: boolean;
}

export function loadNodeId(stateDir: string, make: () => string = () => randomBytes(16).toString('hex')): NodeIdResult {
  const file = join(stateDir, NODE_ID_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PluginError('STATE_CORRUPT', `${file}: cannot read this host's node id: ${(err as Error).message}`);
    }
  }
  if (text !== undefined) {
    const id = text.trim();
    if (!NODE_ID.test(id)) {
      throw new PluginError(
        'STATE_CORRUPT',
        `${file}: is not a node id (32 lowercase hex digits); restore it, or delete it to start this host as a new node (its records in etcd under the old id are then another node's: \`mynet cluster forget\` them from another host)`,
      );
    }
    return { id, made: false };
  }
  const id = make();
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${id}\n`, { mode: 0o600, flush: true });
  renameSync(tmp, file);
  return { id, made: true };
}
