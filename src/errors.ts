/**
 * Every failure the plugin reports has a literal code. `toErr()` in http/ turns any thrown
 * value into the one wire shape dockerd understands: HTTP 500 + {"Err": "..."}.
 * Messages are lowercase, say what failed and on which object, and keep the cause.
 */
export type ErrorCode =
  | 'INVALID_REQUEST' // bad input from dockerd or from a user's option
  | 'NOT_FOUND' // an unknown route
  | 'NETWORK_NOT_FOUND'
  | 'ENDPOINT_NOT_FOUND'
  | 'POOL_NOT_FOUND'
  | 'POLICY_NOT_FOUND' // `mynet policy rm` of a name no policy has
  | 'POOL_EXHAUSTED'
  | 'CONFLICT' // something already exists or is in use (an address, a pool, a port, a bridge name)
  | 'HOST_COMMAND_FAILED'
  | 'STATE_IO' // the state directory could not be read or written
  | 'STATE_CORRUPT'
  | 'BODY_TOO_LARGE'
  | 'CLUSTER_UNAVAILABLE' // etcd (the cluster store) did not answer in time or refused the connection
  | 'INTERNAL';

export const ERROR_CODES: readonly ErrorCode[] = [
  'INVALID_REQUEST',
  'NOT_FOUND',
  'NETWORK_NOT_FOUND',
  'ENDPOINT_NOT_FOUND',
  'POOL_NOT_FOUND',
  'POLICY_NOT_FOUND',
  'POOL_EXHAUSTED',
  'CONFLICT',
  'HOST_COMMAND_FAILED',
  'STATE_IO',
  'STATE_CORRUPT',
  'BODY_TOO_LARGE',
  'CLUSTER_UNAVAILABLE',
  'INTERNAL',
];

export class PluginError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PluginError';
  }
}

/** A host command that exited non-zero or timed out. The message names the command and the kernel's words. */
export class HostCommandError extends PluginError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    options?: { cause?: unknown; timedOut?: boolean },
  ) {
    const why = options?.timedOut ? 'timed out' : firstLine(stderr) || `exit code ${exitCode ?? '?'}`;
    super('HOST_COMMAND_FAILED', `${argv.join(' ')}: ${why}`, options);
    this.name = 'HostCommandError';
  }
}

/** A plan step failed; the steps before it were undone (or not all could be: `undoFailures`). */
export class HostPlanError extends PluginError {
  constructor(
    readonly step: string,
    cause: unknown,
    readonly undoFailures: readonly string[],
  ) {
    const tail = undoFailures.length === 0 ? 'rolled back' : `rollback incomplete: ${undoFailures.join('; ')}`;
    // A step that refused for a reason of its own (a held port's bind found the port in use:
    // CONFLICT) keeps that code; a command that failed is HOST_COMMAND_FAILED.
    const code = cause instanceof PluginError && !(cause instanceof HostCommandError) ? cause.code : 'HOST_COMMAND_FAILED';
    super(code, `${step}: ${messageOf(cause)}; ${tail}`, { cause });
    this.name = 'HostPlanError';
  }
}

export const invalid = (field: string, why: string): PluginError => new PluginError('INVALID_REQUEST', `${field}: ${why}`);

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The first line that says something. Lines of a box drawn with box-drawing characters are
 * skipped: wireguard-go prints such a notice on every start, before its real error.
 */
function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0 && !/^[\u2500-\u257f]/.test(l)) ?? ''
  );
}

/** A teardown ran every step and some failed: each is named with the kernel's message. */
export class HostTeardownError extends PluginError {
  constructor(
    readonly failures: readonly { readonly step: string; readonly error: string }[],
    readonly steps: number,
  ) {
    super(
      'HOST_COMMAND_FAILED',
      `teardown incomplete, ${failures.length} of ${steps} steps failed: ${failures.map((f) => `${f.step}: ${f.error}`).join('; ')}`,
    );
    this.name = 'HostTeardownError';
  }
}
