/**
 * A file-backed IDE disk for v86: the swap device as the guest sees it.
 *
 * v86 accepts any object with `byteLength`, `load()`/`onload`, `get`, `set`,
 * `get_from_cache`, `get_state`, `set_state` as a disk (see `add_file` in the V86
 * starter). This one reads and writes the host file with synchronous positioned I/O
 * and keeps no cache, so the file is never loaded whole into memory and the harness,
 * writing the same file through its own descriptor, sees every guest write at once
 * and vice versa.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

export class FileDisk {
  readonly byteLength: number;
  onload: ((e?: unknown) => void) | undefined;
  onprogress: ((e?: unknown) => void) | undefined;
  /** Bytes the guest has read and written through the IDE controller. */
  readonly stats = { bytesRead: 0, bytesWritten: 0 };
  private fd: number | undefined;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r+');
    const size = fstatSync(this.fd).size;
    // IDE addresses whole sectors; a partial last sector is not addressable.
    this.byteLength = size - (size % 512);
  }

  load(): void {
    queueMicrotask(() => this.onload?.({}));
  }

  get(start: number, len: number, fn: (data: Uint8Array) => void): void {
    fn(this.read(start, len));
  }

  /** v86 warms its cache with the first sector before init; there is no cache here. */
  get_and_cache(start: number, len: number, fn: (data: Uint8Array) => void): void {
    fn(this.read(start, len));
  }

  get_from_cache(start: number, len: number): Uint8Array {
    return this.read(start, len);
  }

  set(start: number, slice: Uint8Array, fn: () => void): void {
    this.checkRange(start, slice.length);
    writeSync(this.openFd(), slice, 0, slice.length, start);
    this.stats.bytesWritten += slice.length;
    fn();
  }

  get_state(): unknown[] {
    return [];
  }

  set_state(_state: unknown): void {}

  /** Closes the host file; later guest accesses fail loudly. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private read(start: number, len: number): Uint8Array {
    this.checkRange(start, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.openFd(), out, done, len - done, start + done);
      if (n === 0) break;
      done += n;
    }
    this.stats.bytesRead += len;
    return out;
  }

  private checkRange(start: number, len: number): void {
    if (start < 0 || len < 0 || start + len > this.byteLength) {
      throw new RangeError(`disk ${this.path}: access [${start}, ${start + len}) outside ${this.byteLength} bytes`);
    }
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error(`disk ${this.path}: used after close`);
    return this.fd;
  }
}
