/**
 * This host's WireGuard key pair (issue 24). The private key is made here, in the state
 * directory, mode 0600, and never leaves the host: it is not logged, not in etcd, and not even
 * handed to `wg` on a command line (`wg set ... private-key <file>` reads the file). Only the
 * public key is kept in memory. A key file that others can read is refused, as ssh refuses one.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PluginError } from '../../errors.js';

export const KEY_FILE = 'wireguard.key';

/** A WireGuard key as `wg` prints it: 32 bytes in standard base64 (44 characters, one "=" of padding). */
export const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** X25519 private keys in PKCS#8 DER: this fixed prefix, then the 32 raw bytes. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

export function isWgKey(text: unknown): text is string {
  return typeof text === 'string' && WG_KEY.test(text) && Buffer.from(text, 'base64').length === 32;
}

/** The public key of a private one (both in wg's base64), by node's own X25519. */
export function publicKeyOf(privateBase64: string): string {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, Buffer.from(privateBase64, 'base64')]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(priv).export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url').toString('base64');
}

/** A new private key, clamped as Curve25519 wants it (as `wg genkey` makes them). */
export function newPrivateKey(): string {
  const d = randomBytes(32);
  d[0] = (d[0] as number) & 248;
  d[31] = ((d[31] as number) & 127) | 64;
  return d.toString('base64');
}

export interface HostKey {
  /** The file `wg` reads the private key from. */
  readonly path: string;
  readonly publicKey: string;
}

/**
 * Reads this host's key, making it first when there is none. The error names the file, never
 * its contents.
 */
export function loadOrCreateKey(stateDir: string): HostKey {
  const path = join(stateDir, KEY_FILE);
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0)
      throw new PluginError(
        'STATE_IO',
        `${path}: the WireGuard private key is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it, or delete it to make a new one`,
      );
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw err instanceof PluginError
        ? err
        : new PluginError('STATE_IO', `${path}: cannot read the WireGuard key (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
            cause: err,
          });
    return writeKey(stateDir, newPrivateKey());
  }
  if (!isWgKey(text))
    throw new PluginError('STATE_CORRUPT', `${path}: not a WireGuard private key (32 bytes in base64); delete it to make a new one`);
  return { path, publicKey: publicKeyOf(text) };
}

/** Writes a private key (a new one, or a rotation's) whole or not at all: a temporary file, then a rename. */
export function writeKey(stateDir: string, privateBase64: string): HostKey {
  const path = join(stateDir, KEY_FILE);
  const tmp = `${path}.new`;
  writeFileSync(tmp, `${privateBase64}\n`, { mode: 0o600, flag: 'w' });
  // An old .new left by a crash may have had another mode: the mode is set again, whatever it was.
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return { path, publicKey: publicKeyOf(privateBase64) };
}
