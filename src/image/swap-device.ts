/**
 * The swap device: a regular host file that the guest sees as an IDE disk and that the
 * harness reads and writes directly, with synchronous calls on one file descriptor.
 *
 * A new device is a file with the swap signature in sector 0 (see layout.ts) whose
 * blocks are all allocated, as Linux wants of a swap file (swapon refuses holes): on a
 * file system with O_DIRECT its zeros are written past the page cache at creation.
 * The device never loads itself into memory: every access is a positioned read or
 * write of the caller's buffer, looped until complete.
 */

import fs from 'node:fs';
import { promisify } from 'node:util';

import { pageAlignedMemory } from '../wasm.ts';
import { ImageError, bytesText } from './errors.ts';
import { mappedPieces, readMapped } from './page-scan.mjs';
import { SECTOR_SIZE, decodeSignature, encodeSwapSignature, imageExtent, maxPagesFor, type Signature } from './layout.ts';

export interface SwapDeviceOpenOptions {
  /** Open for writing as well as reading. Default: false (read-only). */
  readonly writable?: boolean;
}

/** The smallest device create() makes: signature page, header page, one metadata page, one data page. */
export const MIN_DEVICE_BYTES = imageExtent(1).imageBytes;

/** Largest single read or write handed to the kernel (Linux caps one call near 2 GiB). */
const MAX_IO_BYTES = 1 << 30;
const fdatasyncAsync = promisify(fs.fdatasync);
const writevAsync = promisify(fs.writev) as unknown as (fd: number, buffers: readonly Uint8Array[], position: number) => Promise<{ bytesWritten: number }>;
const readAsync = promisify(fs.read) as unknown as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>;
const writeAsync = promisify(fs.write) as unknown as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;

/** Size of the page-aligned zeros create() writes a new device with (a WebAssembly.Memory starts on a page boundary). */
const ZERO_FILL_BYTES = 4 << 20;
let zeros: Uint8Array | undefined;
/** statfs(2) magic numbers of file systems that keep files in memory: tmpfs, ramfs. */
const MEMORY_FILE_SYSTEMS = [0x01021994, 0x858458f6];

export class SwapDevice {
  #extents: Uint32Array | undefined;

  /**
   * Makes a new empty swap device of `bytes` (a multiple of 512, at least MIN_DEVICE_BYTES):
   * a file with the swap signature, fsync'ed. An existing swap device or image at
   * `path` is re-made (its image is lost); an existing empty file is used; any other
   * existing file is refused with NOT_A_SWAP_DEVICE and left as it was.
   *
   * `allocate` (default true): every block of the device is written once (zeros, with
   * O_DIRECT, so none of them stays in the page cache), as a swap file must be before
   * swapon, unless the file already has that size and all its blocks. An image then
   * overwrites blocks the file system has already placed, where into a sparse file each
   * O_DIRECT write allocated blocks and the commit's fdatasync waited for the journal
   * (docs/IMAGE-FORMAT.md, "The swap device"). Where the file system has no O_DIRECT
   * or keeps files in memory (tmpfs), or with `allocate: false`, the device stays a
   * sparse file.
   */
  static create(path: string, bytes: number, options: { readonly allocate?: boolean } = {}): SwapDevice {
    if (!Number.isSafeInteger(bytes) || bytes < MIN_DEVICE_BYTES || bytes % SECTOR_SIZE !== 0) {
      throw new RangeError(`swap device size must be a multiple of ${SECTOR_SIZE} and at least ${MIN_DEVICE_BYTES} bytes, got ${bytes}`);
    }
    let fd: number;
    try {
      fd = fs.openSync(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = fs.openSync(path, 'wx+');
    }
    const dev = new SwapDevice(path, fd, true);
    try {
      if (dev.bytes > 0 && dev.readSignature().kind === 'unknown') {
        throw new ImageError('NOT_A_SWAP_DEVICE', `refusing to make ${path} a swap device: it exists (${bytesText(dev.bytes)}) and has no swap or image signature`, { path, actual: dev.bytes });
      }
      const st = fs.fstatSync(fd);
      const allocated = st.size === bytes && st.blocks * 512 >= bytes;
      if (!(options.allocate !== false && allocated)) {
        fs.ftruncateSync(fd, 0);
        fs.ftruncateSync(fd, bytes);
        if (options.allocate !== false) dev.zeroFillDirect();
      }
      dev.writeAt(encodeSwapSignature(bytes), 0);
      dev.sync();
      return dev;
    } catch (err) {
      dev.close();
      throw err;
    }
  }

  /** Opens an existing device (or image file) without looking at what it holds. */
  static open(path: string, options: SwapDeviceOpenOptions = {}): SwapDevice {
    const writable = options.writable ?? false;
    return new SwapDevice(path, fs.openSync(path, writable ? 'r+' : 'r'), writable);
  }

  /**
   * Opens `path` for writing if it is a swap device (or holds an image) of at least
   * `bytes`; creates it with exactly `bytes` if it does not exist or is empty. Refuses a
   * smaller device (DEVICE_TOO_SMALL: it is not grown behind the user's back) and any
   * other file (NOT_A_SWAP_DEVICE). `allocate` as for create().
   */
  static ensure(path: string, bytes: number, options: { readonly allocate?: boolean } = {}): SwapDevice {
    let dev: SwapDevice;
    try {
      dev = SwapDevice.open(path, { writable: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return SwapDevice.create(path, bytes, options);
      throw err;
    }
    const size = dev.bytes;
    const kind = size === 0 ? 'empty' : dev.readSignature().kind;
    if (kind === 'empty') {
      dev.close();
      return SwapDevice.create(path, bytes, options);
    }
    if (kind === 'unknown') {
      dev.close();
      throw new ImageError('NOT_A_SWAP_DEVICE', `${path} is not a swap device: it has no swap or image signature (${bytesText(size)}); refusing to use it`, { path, actual: size });
    }
    if (size < bytes) {
      dev.close();
      throw new ImageError('DEVICE_TOO_SMALL', `swap device ${path} holds ${bytesText(size)}, but ${bytesText(bytes)} were asked for; delete it or make a bigger one`, { path, expected: bytes, actual: size });
    }
    return dev;
  }

  readonly path: string;
  readonly writable: boolean;
  #fd: number | undefined;
  /** writeDirectAsync's O_DIRECT descriptor: undefined until first used, -1 where there is none. */
  #directFd: number | undefined;

  private constructor(path: string, fd: number, writable: boolean) {
    this.path = path;
    this.#fd = fd;
    this.writable = writable;
  }

  /** Size of the file now (not cached: a test or a user may truncate it). */
  get bytes(): number {
    return fs.fstatSync(this.fd).size;
  }

  /**
   * Identity of the file's current contents as the file system sees them (inode,
   * size, modification and change times in ns). Any write changes it, so an equal
   * version means nobody wrote the file in between.
   */
  version(): string {
    const st = fs.fstatSync(this.fd, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  }

  /** How many pages an image on this device can hold. */
  maxPages(): number {
    return maxPagesFor(this.bytes);
  }

  /** What sector 0 says. */
  readSignature(): Signature {
    const sector = new Uint8Array(SECTOR_SIZE);
    const got = this.readAt(sector, 0);
    return decodeSignature(got === SECTOR_SIZE ? sector : sector.subarray(0, got));
  }

  /**
   * Reads of the image on this device from now on go through its swap map ([first
   * sector, sectors] pairs, the image header's extents; empty or undefined: as they
   * are). Writes never do: the harness's saves write images contiguously.
   */
  mapImage(extents: Uint32Array | undefined): void {
    this.#extents = extents && extents.length > 0 ? extents : undefined;
  }

  /** The swap map reads go through (undefined: none). */
  get imageMap(): Uint32Array | undefined {
    return this.#extents;
  }

  /** Reads into all of `into` from `offset` (through the swap map, if any); returns the bytes read (fewer only at end of file). */
  readAt(into: Uint8Array, offset: number): number {
    if (this.#extents) return readMapped(this.fd, into, offset, this.#extents);
    let done = 0;
    while (done < into.length) {
      const n = fs.readSync(this.fd, into, done, Math.min(into.length - done, MAX_IO_BYTES), offset + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /**
   * Like readAt, on libuv's thread pool (several at once run on several threads): the
   * caller's thread is free meanwhile, and `into` must not be touched until it settles.
   */
  async readAtAsync(into: Uint8Array, offset: number): Promise<number> {
    const fd = this.fd;
    if (this.#extents) {
      let done = 0;
      for (const [physical, at, bytes] of mappedPieces(this.#extents, offset, into.length)) {
        if (at !== done) return done;
        let got = 0;
        while (got < bytes) {
          const { bytesRead } = await readAsync(fd, into, at + got, Math.min(bytes - got, MAX_IO_BYTES), physical + got);
          if (bytesRead === 0) return at + got;
          got += bytesRead;
        }
        done = at + bytes;
      }
      return done;
    }
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await readAsync(fd, into, done, Math.min(into.length - done, MAX_IO_BYTES), offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  /** Writes all of `data` at `offset`. */
  writeAt(data: Uint8Array, offset: number): void {
    if (!this.writable) throw new Error(`swap device ${this.path} was opened read-only`);
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(this.fd, data, done, Math.min(data.length - done, MAX_IO_BYTES), offset + done);
    }
  }

  /** Like writeAt, on libuv's thread pool: the caller's thread is free meanwhile. `data` must not change until it settles. */
  async writeAtAsync(data: Uint8Array, offset: number): Promise<void> {
    if (!this.writable) throw new Error(`swap device ${this.path} was opened read-only`);
    const fd = this.fd;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await writeAsync(fd, data, done, Math.min(data.length - done, MAX_IO_BYTES), offset + done);
      if (bytesWritten <= 0) throw new Error(`write to swap device ${this.path} wrote nothing at offset ${offset + done}`);
      done += bytesWritten;
    }
  }

  /**
   * Writes `parts` back to back from `offset` with one writev on libuv's thread pool
   * (gathering pages from scattered guest frames into one file region). The parts must
   * not change until it settles.
   */
  async writevAtAsync(parts: readonly Uint8Array[], offset: number): Promise<void> {
    if (!this.writable) throw new Error(`swap device ${this.path} was opened read-only`);
    await this.writevAllAsync(this.fd, parts, offset);
  }

  /**
   * writevAtAsync with O_DIRECT where it can (see writeDirectAsync: every part must start
   * and end on a sector boundary of page-aligned memory, as guest frames do), through the
   * page cache otherwise. Resolves to how it was written.
   */
  async writevDirectAsync(parts: readonly Uint8Array[], offset: number): Promise<'direct' | 'buffered'> {
    if (!this.writable) throw new Error(`swap device ${this.path} was opened read-only`);
    if (this.closed) throw new Error(`swap device ${this.path} is closed`);
    const fd = this.directFd();
    if (fd !== undefined && offset % SECTOR_SIZE === 0 && parts.every((p) => p.length % SECTOR_SIZE === 0)) {
      try {
        await this.writevAllAsync(fd, parts, offset);
        return 'direct';
      } catch (err) {
        // Alignment (EINVAL) before anything was written; anything else is a real error.
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      }
    }
    await this.writevAllAsync(this.fd, parts, offset);
    return 'buffered';
  }

  private async writevAllAsync(fd: number, parts: readonly Uint8Array[], offset: number): Promise<void> {
    let rest = parts.filter((p) => p.length > 0);
    let at = offset;
    while (rest.length > 0) {
      const { bytesWritten } = await writevAsync(fd, rest, at);
      if (bytesWritten <= 0) throw new Error(`writev to swap device ${this.path} wrote nothing at offset ${at}`);
      at += bytesWritten;
      // A short write (rare): drop what was written and go on with the rest.
      let skip = bytesWritten;
      while (rest.length > 0 && skip >= rest[0]!.length) skip -= rest.shift()!.length;
      if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
    }
  }

  /**
   * Writes all of `data` at `offset` with O_DIRECT, on libuv's thread pool: from the
   * caller's memory to the disk in one step, past the page cache (no copy into it, no
   * writeback afterwards; the kernel first writes back and drops any cached pages of the
   * range, so reads see the new data). O_DIRECT wants the buffer's address, the offset
   * and the length aligned to the disk's blocks: guest RAM (a WebAssembly.Memory, which
   * starts on a page boundary) at page offsets is. Where the file system has no O_DIRECT
   * (tmpfs) or refuses this buffer (EINVAL), the write goes through the page cache
   * instead. Resolves to how it was written. `data` must not change until it settles;
   * sync() still makes it durable (the disk's own cache).
   */
  async writeDirectAsync(data: Uint8Array, offset: number): Promise<'direct' | 'buffered'> {
    return this.writevDirectAsync([data], offset);
  }

  /**
   * Writes zeros over the whole file with O_DIRECT. Nothing where the file system has no
   * O_DIRECT, or keeps files in memory (tmpfs, ramfs: no blocks to place, and writing them
   * would only commit host RAM).
   */
  private zeroFillDirect(): void {
    const fd = this.directFd();
    if (fd === undefined || MEMORY_FILE_SYSTEMS.includes(Number(fs.statfsSync(this.path).type))) return;
    const size = this.bytes;
    zeros ??= pageAlignedMemory(ZERO_FILL_BYTES);
    for (let at = 0; at < size; ) {
      const n = fs.writeSync(fd, zeros, 0, Math.min(ZERO_FILL_BYTES, size - at), at);
      if (n <= 0) throw new Error(`writing zeros to the new swap device ${this.path} wrote nothing at offset ${at}`);
      at += n;
    }
  }

  /** Whether writeDirectAsync can bypass the page cache on this file (the file system has O_DIRECT). */
  hasDirectIo(): boolean {
    return this.writable && !this.closed && this.directFd() !== undefined;
  }

  /** The O_DIRECT descriptor, opened on first use; undefined where the file system has none. */
  private directFd(): number | undefined {
    if (this.#directFd === undefined) {
      const flag = fs.constants.O_DIRECT;
      try {
        this.#directFd = flag === undefined ? -1 : fs.openSync(this.path, fs.constants.O_WRONLY | flag);
      } catch {
        this.#directFd = -1;
      }
    }
    return this.#directFd >= 0 ? this.#directFd : undefined;
  }

  /** fsync: everything written so far is on the disk when this returns. */
  sync(): void {
    fs.fsyncSync(this.fd);
  }

  /**
   * fdatasync: everything written so far is on the disk when this returns, with the
   * file's metadata that reading it back needs (block allocation, size) but not its
   * timestamps. What the image's commit and the signature writes use: after a crash the
   * data is there, and a journal commit only for the new mtime is saved.
   */
  syncData(): void {
    fs.fdatasyncSync(this.fd);
  }

  /**
   * fdatasync on libuv's thread pool: the data written before the call (and what the
   * file needs to find it) reaches the disk while the caller goes on writing.
   */
  async syncDataAsync(): Promise<void> {
    await fdatasyncAsync(this.fd);
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  /** Closes the file; closing twice is harmless. */
  close(): void {
    if (this.#directFd !== undefined && this.#directFd >= 0) fs.closeSync(this.#directFd);
    this.#directFd = undefined;
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    fs.closeSync(fd);
  }

  /**
   * The open file descriptor, for a helper thread of this process (worker threads share
   * the descriptor table: validation's CRC thread reads the image through it). It stays
   * the device's: never close it, and stop using it before the device is closed.
   */
  get fileDescriptor(): number {
    return this.fd;
  }

  private get fd(): number {
    if (this.#fd === undefined) throw new Error(`swap device ${this.path} is closed`);
    return this.#fd;
  }
}
