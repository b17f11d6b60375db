/**
 * The few file operations the state store makes, behind one interface so that tests can make
 * them fail the way a full or failing disk does (a short write, ENOSPC, EIO from fdatasync)
 * on every path. Journal appends are synchronous (one small write under the plugin's lock);
 * snapshot writes are asynchronous (a large state must not stall DNS while it is written).
 */
import {
  close,
  closeSync,
  fdatasyncSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  open,
  openSync,
  rename,
  unlink,
  write,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';

export interface StoreFs {
  openSync(path: string, flags: number, mode?: number): number;
  closeSync(fd: number): void;
  /** pwrite: may write fewer bytes than asked (a full disk); returns how many it wrote. */
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  ftruncateSync(fd: number, length: number): void;

  open(path: string, flags: number, mode?: number): Promise<number>;
  close(fd: number): Promise<void>;
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

const writeAsync = promisify(write);

export const nodeStoreFs: StoreFs = {
  openSync: (p, f, m) => openSync(p, f, m),
  closeSync: (fd) => closeSync(fd),
  writeSync: (fd, b, o, l, p) => writeSync(fd, b, o, l, p),
  fdatasyncSync: (fd) => fdatasyncSync(fd),
  fsyncSync: (fd) => fsyncSync(fd),
  ftruncateSync: (fd, l) => ftruncateSync(fd, l),
  open: promisify(open),
  close: promisify(close),
  write: async (fd, b, o, l, p) => (await writeAsync(fd, b, o, l, p)).bytesWritten,
  fsync: promisify(fsync),
  rename: promisify(rename),
  unlink: promisify(unlink),
};
