/**
 * The real file operations, with faults queued per operation: the next call of that operation
 * writes only part of what it was given (`short`), or fails with an errno (`ENOSPC`, `EIO`),
 * as a full or failing disk does. Not a test file.
 */
import type { StoreFs } from '../../../src/store/store-fs.js';
import { nodeStoreFs } from '../../../src/store/store-fs.js';

export type Op = keyof StoreFs;
export type Fault = { readonly short: number } | 'ENOSPC' | 'EIO';

const errno = (code: string, op: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: ${code === 'ENOSPC' ? 'no space left on device' : 'i/o error'}, ${op}`), {
    code,
    errno: code === 'ENOSPC' ? -28 : -5,
    syscall: op,
  });

export class FaultyFs implements StoreFs {
  private readonly queue: { op: Op; fault: Fault }[] = [];
  /** Every call made, by operation name (to check what was tried). */
  readonly calls: Op[] = [];

  /** Queues faults for the next calls of `op`, in order. */
  fail(op: Op, ...faults: Fault[]): this {
    for (const fault of faults) this.queue.push({ op, fault });
    return this;
  }

  /** Faults queued and not yet hit (a test that expects them all hit checks this is empty). */
  pending(): string[] {
    return this.queue.map((q) => `${q.op}:${typeof q.fault === 'string' ? q.fault : `short ${q.fault.short}`}`);
  }

  private take(op: Op): Fault | undefined {
    this.calls.push(op);
    const i = this.queue.findIndex((q) => q.op === op);
    return i < 0 ? undefined : this.queue.splice(i, 1)[0]?.fault;
  }

  private sync<T>(op: Op, run: () => T): T {
    const f = this.take(op);
    if (typeof f === 'string') throw errno(f, op);
    return run();
  }

  private async async<T>(op: Op, run: () => Promise<T>): Promise<T> {
    const f = this.take(op);
    if (typeof f === 'string') throw errno(f, op);
    return run();
  }

  openSync = (p: string, f: number, m?: number): number => this.sync('openSync', () => nodeStoreFs.openSync(p, f, m));
  closeSync = (fd: number): void => this.sync('closeSync', () => nodeStoreFs.closeSync(fd));
  writeSync = (fd: number, b: Uint8Array, o: number, l: number, p: number): number => {
    const f = this.take('writeSync');
    if (typeof f === 'string') throw errno(f, 'write');
    return nodeStoreFs.writeSync(fd, b, o, f ? Math.min(f.short, l) : l, p);
  };
  fdatasyncSync = (fd: number): void => this.sync('fdatasyncSync', () => nodeStoreFs.fdatasyncSync(fd));
  fsyncSync = (fd: number): void => this.sync('fsyncSync', () => nodeStoreFs.fsyncSync(fd));
  ftruncateSync = (fd: number, l: number): void => this.sync('ftruncateSync', () => nodeStoreFs.ftruncateSync(fd, l));
  open = (p: string, f: number, m?: number): Promise<number> => this.async('open', () => nodeStoreFs.open(p, f, m));
  close = (fd: number): Promise<void> => this.async('close', () => nodeStoreFs.close(fd));
  write = async (fd: number, b: Uint8Array, o: number, l: number, p: number): Promise<number> => {
    const f = this.take('write');
    if (typeof f === 'string') throw errno(f, 'write');
    return nodeStoreFs.write(fd, b, o, f ? Math.min(f.short, l) : l, p);
  };
  fsync = (fd: number): Promise<void> => this.async('fsync', () => nodeStoreFs.fsync(fd));
  rename = (a: string, b: string): Promise<void> => this.async('rename', () => nodeStoreFs.rename(a, b));
  unlink = (p: string): Promise<void> => this.async('unlink', () => nodeStoreFs.unlink(p));
}
