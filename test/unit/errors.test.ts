import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HostCommandError, HostPlanError, PluginError, invalid, messageOf } from '../../src/errors.js';
import { toErr } from '../../src/http/app.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
/** Table rows: | `CODE` | meaning | example | */
const rows = doc.split('\n').flatMap((line) => {
  const m = /^\|\s*`([A-Z_]+)`\s*\|([^|]*)\|(.*)\|\s*$/.exec(line);
  return m ? [{ code: m[1] as string, meaning: (m[2] as string).trim(), example: (m[3] as string).trim() }] : [];
});

describe('docs/errors.md', () => {
  it('lists every ErrorCode with a one-line meaning and an example', () => {
    for (const code of ERROR_CODES) {
      const row = rows.find((r) => r.code === code);
      expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
      expect(row?.meaning.length, `${code} has no meaning`).toBeGreaterThan(10);
      expect(row?.example.length, `${code} has no example`).toBeGreaterThan(3);
    }
  });

  it('lists no code that is not an ErrorCode, and none twice', () => {
    for (const r of rows) expect(ERROR_CODES, `${r.code} is not in ERROR_CODES`).toContain(r.code);
    expect(new Set(rows.map((r) => r.code)).size).toBe(rows.length);
    // Every backticked all-caps code-like word in the doc is a real code too.
    for (const m of doc.matchAll(/`([A-Z][A-Z_]{3,})`/g)) expect(ERROR_CODES).toContain(m[1]);
  });

  it('ERROR_CODES has no duplicates', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  });
});

describe('error classes', () => {
  it('invalid() names the field', () => {
    const e = invalid('Pool', 'is bad');
    expect(e).toBeInstanceOf(PluginError);
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toBe('Pool: is bad');
  });

  it('HostCommandError names the command and the first stderr line, or the exit code, or the timeout', () => {
    expect(new HostCommandError(['ip', 'link', 'add'], 2, '\n  RTNETLINK answers: File exists\nmore').message).toBe(
      'ip link add: RTNETLINK answers: File exists',
    );
    expect(new HostCommandError(['nft', '-f', '-'], 1, '').message).toBe('nft -f -: exit code 1');
    // wireguard-go's boxed notice comes before its real error on every start.
    const banner = '┌────┐\n│   Running wireguard-go is not required   │\n└────┘\nUAPI listen error: unix socket in use\n';
    expect(new HostCommandError(['wireguard-go', 'wg0'], 1, banner).message).toBe(
      'wireguard-go wg0: UAPI listen error: unix socket in use',
    );
    expect(new HostCommandError(['x'], undefined, '').message).toBe('x: exit code ?');
    expect(new HostCommandError(['x'], undefined, 'whatever', { timedOut: true }).message).toBe('x: timed out');
    expect(new HostCommandError(['x'], 1, '').code).toBe('HOST_COMMAND_FAILED');
  });

  it('HostPlanError says rolled back, or what could not be undone', () => {
    const cause = new HostCommandError(['ip', 'a'], 1, 'boom');
    expect(new HostPlanError('step', cause, []).message).toBe('step: ip a: boom; rolled back');
    expect(new HostPlanError('step', cause, ['u1: no', 'u2: no']).message).toBe('step: ip a: boom; rollback incomplete: u1: no; u2: no');
    expect(new HostPlanError('step', 'text', []).cause).toBe('text');
    // A failed command is HOST_COMMAND_FAILED; a step that refused with a code of its own keeps it.
    expect(new HostPlanError('step', cause, []).code).toBe('HOST_COMMAND_FAILED');
    expect(new HostPlanError('hold 1 host port socket(s)', new PluginError('CONFLICT', 'host port 8080/tcp is in use'), []).code).toBe(
      'CONFLICT',
    );
    expect(new HostPlanError('step', new Error('plain'), []).code).toBe('HOST_COMMAND_FAILED');
  });

  it('messageOf', () => {
    expect(messageOf(new Error('m'))).toBe('m');
    expect(messageOf('s')).toBe('s');
    expect(messageOf(3)).toBe('3');
  });
});

describe('toErr (the one mapper to the wire)', () => {
  it('maps codes and library errors to status and message', () => {
    expect(toErr(invalid('x', 'y'))).toEqual({ status: 500, message: 'x: y' });
    expect(toErr(new PluginError('NOT_FOUND', 'nf'))).toEqual({ status: 404, message: 'nf' });
    expect(toErr(new PluginError('BODY_TOO_LARGE', 'big'))).toEqual({ status: 413, message: 'big' });
    expect(toErr(new PluginError('CONFLICT', 'c'))).toEqual({ status: 500, message: 'c' });
    expect(toErr(Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 })).status).toBe(413);
    const parse = toErr(Object.assign(new Error('Unexpected token'), { type: 'entity.parse.failed', status: 400 }));
    expect(parse.status).toBe(500);
    expect(parse.message).toMatch(/JSON/);
    expect(toErr(Object.assign(new Error('bad charset'), { status: 415 }))).toEqual({ status: 500, message: 'body: bad charset' });
    expect(toErr(new TypeError('oops'))).toEqual({ status: 500, message: 'internal error: oops' });
  });
});
