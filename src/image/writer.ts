/**
 * ImageWriter: writes a hibernation image onto a swap device (swap.c: swsusp_write).
 *
 * The caller fixes the image's pages up front (their PFNs, ascending) and then writes
 * them in any order, any number of times: the last write of a page wins. That is what
 * strategies that write memory while the guest still runs need (wp-full, cow,
 * two-pageset): a page written early and dirtied later is simply written again.
 *
 * Data goes straight to its final place in the data region, so page i always lives at
 * data_offset + i * PAGE_SIZE, and its CRC32 is taken as it is written. Consecutive
 * small writes are gathered in a staging buffer and reach the file as one write; a
 * write() of 256 KiB or more goes to the file from the caller's buffer, uncopied.
 *
 * commit() writes the metadata and the header, makes them and the data durable
 * (fdatasync), and only then writes the image signature and makes it durable. Until
 * that last sector write the device holds the signature it had before, so a crash or
 * an error at any point leaves either no image or the complete new one, never a
 * signature over half an image. (An image that was already on the device is discarded,
 * signature reset, just before the first byte of the new one is written over it.)
 */

import { crc32, crc32Pages } from './crc.ts';

import { ImageError, bytesText, hex } from './errors.ts';
import {
  BUILD_ID_BYTES, CONTEXT_BYTES, HEADER_OFFSET, MAX_FRAMES, PAGE_SIZE, STRATEGY_BYTES, ZERO_STATS,
  encodeHeader, encodeMetadata, imageExtent, maxPagesFor,
  type ImageExtent, type ImageStats, type SavedContext,
} from './layout.ts';
import { markImage, resetSignature } from './signature.ts';
import type { SwapDevice } from './swap-device.ts';

/** Stats a strategy reports; rewrittenPages is counted by the writer itself. */
export type ImageStatsInput = Partial<Omit<ImageStats, 'rewrittenPages'>>;

export interface ImageWriterOptions {
  /** PFNs of the image's pages, strictly ascending; page index i is pfns[i]. Copied. */
  readonly pfns: Uint32Array;
  /** sha256 of the guest ELF: 64 hex digits or 32 raw bytes. */
  readonly buildId: string | Uint8Array;
  /** RAM size of the guest being hibernated. */
  readonly ramBytes: number;
  /** Frames of the guest being hibernated; every PFN must be below it. */
  readonly frameCount: number;
  /** Name of the save strategy (at most 32 ASCII characters). */
  readonly strategy: string;
  /** The saved context; may instead be given to commit() (it is known only at the atomic point). */
  readonly context?: SavedContext;
  /** Counters for the header; commit() may add to them. Default: all zero. */
  readonly stats?: ImageStatsInput;
  /** fdatasync before and after the signature (and after discarding an old image). Default: true. */
  readonly durable?: boolean;
  /** Size of the buffer that gathers consecutive small writes. Default: 4 MiB. */
  readonly stagingBytes?: number;
  /**
   * writeRuns and stable writes go O_DIRECT where the file system and the
   * memory allow (guest RAM does), past the page cache, as Linux writes its image to the
   * swap device with bios. Default: true; false keeps them in the page cache.
   */
  readonly directIo?: boolean;
}

export interface CommitOptions {
  /** The saved context, if it was not given to the constructor (a value here wins). */
  readonly context?: SavedContext;
  /** Counters known only at the end; they override those given to the constructor. */
  readonly stats?: ImageStatsInput;
}

export interface CommitResult {
  /** Bytes from the start of the device to the end of the data. */
  readonly imageBytes: number;
  readonly pageCount: number;
  readonly headerCrc: number;
  readonly metadataCrc: number;
  /** Page bytes written, rewrites included (write amplification = this / (pageCount * 4096)). */
  readonly pageBytesWritten: number;
  /** Of those, the bytes that went to the disk with O_DIRECT, past the page cache. */
  readonly directPageBytes: number;
  /** Page writes that replaced an earlier write of the same page. */
  readonly rewrittenPages: number;
  readonly stats: ImageStats;
}

const DEFAULT_STAGING_BYTES = 4 << 20;
/** #written: the page was written and its CRC recorded. */
const WRITTEN = 1;
/** #written: the page was written by a stable write, its CRC is taken at commit. */
const CRC_OWED = 2;
/**
 * A run this long goes to the file in its own write, uncopied, even if it would still fit
 * the stage: one more write call is cheap, copying a few MiB into the stage (cold at
 * first: page faults) is not, inside wp-full's atomic section.
 */
const DIRECT_WRITE_BYTES = 256 << 10;
/** Stable writes in the background: chunks of this size, all submitted at once (libuv's pool runs four). */
const IN_FLIGHT_CHUNK_BYTES = 4 << 20;
/** Chunk of writeRuns: small enough that its CRCs read it from the cache the write just pulled it through. */
const OVERLAP_CHUNK_BYTES = 2 << 20;
/** Chunks of writeRuns on libuv's thread pool at once (the pool has four threads). */
const WRITES_IN_FLIGHT = 3;
/**
 * A durable writer starts an fdatasync in the background once this much that went
 * through the page cache has finished writing since the last one began (checked as each
 * write takes its slot): the disk writes back while more is written,
 * and commit()'s fdatasync finds little left to do (one fsync at the end would wait for
 * all of it at once).
 */
const WRITEBACK_BYTES = 32 << 20;

/**
 * The one narrow interface strategies write images through (Linux's
 * snapshot_write_next, as a stream): pages or runs in, then commit. How pages reach the
 * disk (staging, O_DIRECT, background writeback, when CRCs are taken) is the writer's
 * own choice (src/image/writer.ts).
 */
export interface ImageStream {
  /** The image's PFNs, ascending (page i is pfns[i]). */
  readonly pfns: Uint32Array;
  readonly pageCount: number;
  /** Page index of `pfn`, or -1. */
  indexOf(pfn: number): number;
  /**
   * Pages firstIndex, firstIndex + 1, ... from `data`. With `stable` the caller promises
   * `data` stays as it is until commit (the writer may write it later and checksum it
   * meanwhile); without it `data` may change as soon as this returns.
   */
  write(firstIndex: number, data: Uint8Array, options?: { readonly stable?: boolean }): void;
  /**
   * Pages firstIndex, ... from `parts` (each whole pages, scattered in memory); `fill`
   * produces each piece just before it is written (an atomic copy made piece by piece
   * while the first pieces are being written).
   */
  writeRuns(firstIndex: number, parts: readonly Uint8Array[], options?: { readonly fill?: (piece: Uint8Array, part: number, offset: number) => void }): Promise<void>;
}

export class ImageWriter implements ImageStream {
  readonly device: SwapDevice;
  readonly pageCount: number;
  readonly extent: ImageExtent;
  readonly #pfns: Uint32Array;
  readonly #crcs: Uint32Array;
  readonly #written: Uint8Array;
  readonly #options: ImageWriterOptions;
  readonly #buildId: Uint8Array;
  readonly #durable: boolean;
  #missing: number;
  #rewritten = 0;
  /** Pages of stable writes whose CRCs were not taken yet. */
  #owed = 0;
  /** Background writes of stable writes that have not finished. */
  readonly #pending = new Set<Promise<void>>();
  /** 1 for each page a background write is writing now; #inFlightPages counts them. */
  #inFlight!: Uint8Array;
  #inFlightPages = 0;
  #pageBytesWritten = 0;
  #directPageBytes = 0;
  readonly #directIo: boolean;
  #state: 'open' | 'committed' | 'failed' = 'open';
  /** The device held an image when we started: reset its signature before writing over it. */
  #mustDiscardOldImage: boolean;
  /** Size of the stage; the buffer itself is allocated on its first use (#stage). */
  readonly #stageBytes: number;
  #stageBuffer: Uint8Array | undefined;
  #stageFirst = 0;
  #stagePages = 0;
  /** Bytes written by writeRuns since the last background writeback began. */
  #unsynced = 0;
  #writeback: Promise<void> | undefined;
  #writebackError: unknown;
  /** Runs written with write(..., { stable }): [firstIndex, data, ...]; their CRCs are taken at commit. */
  readonly #stableRuns: Array<number | Uint8Array> = [];

  /**
   * Checks the options and that the image fits the device (DEVICE_TOO_SMALL, giving
   * both sizes). Writes nothing: a writer that is never used leaves the device as it was.
   */
  constructor(device: SwapDevice, options: ImageWriterOptions) {
    this.device = device;
    this.#options = options;
    this.#durable = options.durable ?? true;
    this.#directIo = options.directIo ?? true;
    checkPfns(options.pfns, options.frameCount);
    this.#buildId = buildIdBytes(options.buildId);
    if (!Number.isSafeInteger(options.ramBytes) || options.ramBytes <= 0) throw new RangeError(`ramBytes must be a positive integer, got ${options.ramBytes}`);
    if (!/^[\x21-\x7e]{1,32}$/.test(options.strategy)) throw new RangeError(`strategy must be 1 to ${STRATEGY_BYTES} printable ASCII characters without spaces, got "${options.strategy}"`);
    if (options.context) checkContext(options.context);
    if (options.stats) checkStats(options.stats);
    if (!device.writable) throw new Error(`swap device ${device.path} was opened read-only; open it with { writable: true }`);

    const sig = device.readSignature();
    if (sig.kind === 'unknown') {
      throw new ImageError('NOT_A_SWAP_DEVICE', `refusing to write an image on ${device.path}: it is not a swap device (sector 0 starts with ${sig.rawHex})`, { path: device.path, offset: 0 });
    }
    this.#mustDiscardOldImage = sig.kind === 'image';

    this.pageCount = options.pfns.length;
    this.extent = imageExtent(this.pageCount);
    const deviceBytes = device.bytes;
    if (this.extent.imageBytes > deviceBytes) {
      throw new ImageError(
        'DEVICE_TOO_SMALL',
        `an image of ${this.pageCount} pages needs ${bytesText(this.extent.imageBytes)}, but swap device ${device.path} holds ${bytesText(deviceBytes)} (room for ${maxPagesFor(deviceBytes)} pages)`,
        { path: device.path, expected: this.extent.imageBytes, actual: deviceBytes, count: this.pageCount },
      );
    }

    this.#pfns = options.pfns.slice();
    this.#crcs = new Uint32Array(this.pageCount);
    this.#written = new Uint8Array(this.pageCount);
    this.#inFlight = new Uint8Array(this.pageCount);
    this.#missing = this.pageCount;
    const stagingBytes = options.stagingBytes ?? DEFAULT_STAGING_BYTES;
    if (!Number.isSafeInteger(stagingBytes) || stagingBytes < PAGE_SIZE || stagingBytes % PAGE_SIZE !== 0) {
      throw new RangeError(`stagingBytes must be a positive multiple of ${PAGE_SIZE}, got ${stagingBytes}`);
    }
    this.#stageBytes = Math.min(stagingBytes, Math.max(PAGE_SIZE, this.extent.dataBytes));
  }

  /**
   * The staging buffer, allocated when small writes first need it. Writers that only
   * take long runs (swsusp's atomic copy) never do: allocating 4 MiB inside the atomic
   * section would cost time there (the allocator zero-fills it, and the external memory
   * it adds can start a garbage collection).
   */
  get #stage(): Uint8Array {
    return (this.#stageBuffer ??= new Uint8Array(this.#stageBytes));
  }

  /** PFNs of the image's pages (a copy). */
  get pfns(): Uint32Array {
    return this.#pfns.slice();
  }

  /** Pages not written yet. */
  get missingPages(): number {
    return this.#missing;
  }

  /** Page index of `pfn`, or -1 if it is not in the image (binary search). */
  indexOf(pfn: number): number {
    let lo = 0;
    let hi = this.#pfns.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#pfns[mid]!;
      if (v === pfn) return mid;
      if (v < pfn) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Writes data.length / PAGE_SIZE consecutive pages starting at page `firstIndex`.
   * A run of 256 KiB or more goes to the file in one write from `data` itself; shorter
   * ones are gathered in the stage while they follow each other.
   * `crcs`, if given, are the pages' CRC32s, taken by the caller while the data was hot in
   * the CPU cache (a save's atomic copy); they are recorded as they are, and a wrong one
   * makes the image fail validation (BAD_PAGE_CRC), never resume wrong data.
   */
  #writePages(firstIndex: number, data: Uint8Array, crcs?: Uint32Array): void {
    this.#checkRun('write', firstIndex, data);
    if (crcs && crcs.length !== data.length / PAGE_SIZE) throw new RangeError(`write: ${crcs.length} CRCs for ${data.length / PAGE_SIZE} pages`);
    this.#checkNotInFlight(firstIndex, data.length / PAGE_SIZE);
    this.#guard(() => {
      this.#recordCrcs(firstIndex, data, crcs);
      this.#pageBytesWritten += data.length;
      this.#stageOrWrite(firstIndex, data);
    });
  }

  /**
   * The stream interface strategies write through (ImageStream): pages firstIndex,
   * firstIndex + 1, ... from `data` (whole pages). How they reach the disk is the
   * writer's choice. With `stable`, the caller promises that `data` stays as it is until
   * commit() (an atomic copy in frames nobody writes): the writer may then write it in
   * the background, O_DIRECT where it can, and take the CRCs while the disk works. Without
   * it the data may change once this returns (the writer stages or writes it now).
   * `crcs`, if given, are the pages' CRC32s, taken by the caller (see writePages).
   */
  write(firstIndex: number, data: Uint8Array, options: { readonly stable?: boolean; readonly crcs?: Uint32Array } = {}): void {
    if (options.stable && !options.crcs) {
      this.#writeLater(firstIndex, data);
      this.#stableRuns.push(firstIndex, data);
      return;
    }
    this.#writePages(firstIndex, data, options.crcs);
  }

  /**
   * Pages firstIndex, firstIndex + 1, ... from `parts` (each whole pages): consecutive in
   * the image, scattered in memory (swsusp's copies sit wherever the allocator had free
   * frames). They are gathered into 2 MiB writev calls on libuv's thread pool (a few at
   * once) while this thread takes each piece's CRCs, O_DIRECT where the file system and
   * the memory allow (options.directIo; guest RAM is page-aligned); what goes through
   * the page cache instead, a durable writer sends to the disk with a background
   * fdatasync every 32 MiB. The parts must not change until the promise settles.
   *
   * `fill`, if given, produces the bytes of each piece of a part (at most 2 MiB) just
   * before the piece is gathered for writing: `piece` is parts[part] from byte `offset`
   * on. So producing the next piece (swsusp's atomic copy into it) runs on this thread
   * while the last ones are written on libuv's pool, and each piece's CRCs are taken
   * while it is still in the CPU cache. The promise settles when everything is written.
   */
  async writeRuns(
    firstIndex: number,
    parts: readonly Uint8Array[],
    options: { readonly fill?: (piece: Uint8Array, part: number, offset: number) => void } = {},
  ): Promise<void> {
    const { fill } = options;
    this.#checkOpen();
    let total = 0;
    for (const part of parts) {
      if (part.length % PAGE_SIZE !== 0) throw new RangeError(`writeRuns: ${part.length} bytes is not a whole number of ${PAGE_SIZE}-byte pages`);
      total += part.length;
    }
    const count = total / PAGE_SIZE;
    if (!Number.isInteger(firstIndex) || firstIndex < 0 || firstIndex + count > this.pageCount) {
      throw new RangeError(`writeRuns: pages ${firstIndex}..${firstIndex + count - 1} are outside the image (${this.pageCount} pages)`);
    }
    this.#checkNotInFlight(firstIndex, count);
    this.#guard(() => {
      this.#throwWritebackError();
      this.#flushStage();
      this.#discardOldImage();
    });
    const inFlight: Array<Promise<void>> = [];
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let batchFirst = firstIndex;
    const submit = async (): Promise<void> => {
      // Wait for a slot only now, after the piece was produced: the writes in flight kept
      // the disk busy while `fill` ran.
      if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift();
      if (this.#durable && this.#unsynced >= WRITEBACK_BYTES && !this.#writeback) {
        // The writes finish first, so that the fdatasync covers them.
        await Promise.all(inFlight.splice(0));
        this.#startWriteback();
      }
      // Bytes that went through the page cache are left for the background writeback to
      // send to the disk; O_DIRECT ones are on their way when the write completes.
      const bytes = batchBytes;
      const at = this.extent.dataOffset + batchFirst * PAGE_SIZE;
      const write: Promise<void> = this.#directIo
        ? this.device.writevDirectAsync(batch, at).then((how) => {
            if (how === 'direct') this.#directPageBytes += bytes;
            else this.#unsynced += bytes;
          })
        : this.device.writevAtAsync(batch, at).then(() => void (this.#unsynced += bytes));
      write.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
      inFlight.push(write);
      let index = batchFirst;
      for (const piece of batch) {
        this.#recordCrcs(index, piece);
        index += piece.length / PAGE_SIZE;
      }
      batchFirst = index;
      batch = [];
      batchBytes = 0;
    };
    try {
      for (let p = 0; p < parts.length; p++) {
        const part = parts[p]!;
        for (let off = 0; off < part.length; ) {
          const n = Math.min(part.length - off, OVERLAP_CHUNK_BYTES - batchBytes);
          const piece = part.subarray(off, off + n);
          fill?.(piece, p, off);
          batch.push(piece);
          batchBytes += n;
          off += n;
          if (batchBytes >= OVERLAP_CHUNK_BYTES) await submit();
        }
      }
      if (batchBytes > 0) await submit();
      await Promise.all(inFlight);
    } catch (err) {
      this.#state = 'failed';
      await Promise.allSettled(inFlight);
      throw err;
    }
    this.#pageBytesWritten += total;
  }

  /** Background fdatasync of what was written so far; its failure fails the writer. */
  #startWriteback(): void {
    this.#unsynced = 0;
    const pending = [...this.#pending];
    const sync = pending.length > 0 ? Promise.all(pending).then(() => this.device.syncDataAsync()) : this.device.syncDataAsync();
    this.#writeback = sync.then(
      () => {
        this.#writeback = undefined;
      },
      (err: unknown) => {
        this.#writeback = undefined;
        this.#writebackError ??= err;
      },
    );
  }

  #throwWritebackError(): void {
    if (this.#writebackError !== undefined) throw this.#writebackError;
  }

  /**
   * Finishes the image: every page must have been written (INCOMPLETE_IMAGE otherwise,
   * leaving the device as it was). The CRCs of stable writes are taken while their
   * writes finish; the data written since the last background writeback began is sent
   * to the disk at once, alongside that writeback rather than after it; then the
   * metadata and the header are written and made durable, and only then the image
   * signature (and made durable). After commit the writer is closed.
   */
  async commit(options: CommitOptions = {}): Promise<CommitResult> {
    if (this.#stableRuns.length > 0) {
      // The stable runs' writes are under way: their CRCs are taken now, while the disk
      // works (and for what went through the page cache, while it is written back).
      if (this.#durable && !this.#writeback && this.#state === 'open') this.#startWritebackNow();
      const runs = this.#stableRuns.splice(0);
      for (let r = 0; r < runs.length; r += 2) {
        const first = runs[r] as number;
        const data = runs[r + 1] as Uint8Array;
        const crcs = new Uint32Array(data.length / PAGE_SIZE);
        crc32Pages(data, crcs, 0);
        this.#giveCrcs(first, crcs);
      }
    }
    await this.#drain();
    if (this.#durable && this.#unsynced > 0) {
      this.#checkOpen();
      this.#unsynced = 0;
      try {
        await Promise.all([this.#writeback, this.device.syncDataAsync()]);
      } catch (err) {
        this.#state = 'failed';
        throw err;
      }
    }
    await this.#writeback;
    return this.#commitNow(options);
  }

  /** The writer is open and data is whole pages that lie inside the image. */
  #checkRun(what: string, firstIndex: number, data: Uint8Array): void {
    this.#checkOpen();
    const count = data.length / PAGE_SIZE;
    if (!Number.isInteger(count)) throw new RangeError(`${what}: ${data.length} bytes is not a whole number of ${PAGE_SIZE}-byte pages`);
    if (!Number.isInteger(firstIndex) || firstIndex < 0 || firstIndex + count > this.pageCount) {
      throw new RangeError(`${what}: pages ${firstIndex}..${firstIndex + count - 1} are outside the image (${this.pageCount} pages)`);
    }
  }

  /**
   * Records that data.length / PAGE_SIZE pages from firstIndex were written, with the
   * given CRCs, or CRCs computed from `data`, or (owed) none yet.
   */
  #recordCrcs(firstIndex: number, data: Uint8Array, given?: Uint32Array, owed = false): void {
    // Fields in locals: this runs inside downtimes, often on its first call with a new
    // shape of input, and a field first touched after an optimized loop deoptimizes it.
    const count = data.length / PAGE_SIZE;
    const crcs = this.#crcs;
    const written = this.#written;
    const mark = owed ? CRC_OWED : WRITTEN;
    let rewritten = 0;
    let wasOwed = 0;
    if (!owed) {
      if (given) crcs.set(given.subarray(0, count), firstIndex);
      else crc32Pages(data, crcs, firstIndex);
    }
    for (let i = 0; i < count; i++) {
      const index = firstIndex + i;
      const before = written[index]!;
      if (before !== 0) rewritten++;
      if (before === CRC_OWED) wasOwed++;
      written[index] = mark;
    }
    this.#rewritten += rewritten;
    this.#missing -= count - rewritten;
    this.#owed += (owed ? count : 0) - wasOwed;
  }

  /**
   * A stable write: the pages now, their CRC32s owed until commit() takes them. A run of
   * 256 KiB or more is written in the background (with O_DIRECT where the file system
   * has it), so a save's downtime need not wait for the write or the checksums; writing
   * those pages again before commit throws.
   */
  #writeLater(firstIndex: number, data: Uint8Array): void {
    this.#checkRun('write', firstIndex, data);
    this.#checkNotInFlight(firstIndex, data.length / PAGE_SIZE);
    this.#guard(() => {
      this.#recordCrcs(firstIndex, data, undefined, true);
      this.#pageBytesWritten += data.length;
      // Long runs go to the disk in the background with O_DIRECT: the caller's thread is
      // free for the checksums meanwhile. Without O_DIRECT a synchronous write into the
      // page cache and a background fdatasync measured faster than background buffered writes.
      if (data.length < DIRECT_WRITE_BYTES || !this.device.hasDirectIo()) {
        this.#stageOrWrite(firstIndex, data);
        return;
      }
      this.#flushStage();
      this.#discardOldImage();
      for (let off = 0; off < data.length; off += IN_FLIGHT_CHUNK_BYTES) {
        const chunk = data.subarray(off, off + IN_FLIGHT_CHUNK_BYTES);
        const first = firstIndex + off / PAGE_SIZE;
        const end = first + chunk.length / PAGE_SIZE;
        this.#inFlight.fill(1, first, end);
        this.#inFlightPages += end - first;
        const write: Promise<void> = this.device.writeDirectAsync(chunk, this.extent.dataOffset + first * PAGE_SIZE).then(
          () => undefined,
          (err: unknown) => {
            this.#writebackError ??= err;
          },
        ).finally(() => {
          this.#inFlight.fill(0, first, end);
          this.#inFlightPages -= end - first;
          this.#pending.delete(write);
        });
        this.#pending.add(write);
      }
    });
  }

  /** Waits until every stable write's background write has finished (its failure fails the writer). */
  async #drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    this.#throwWritebackError();
  }

  /** A synchronous write must not race a background write of the same pages. */
  #checkNotInFlight(firstIndex: number, count: number): void {
    if (this.#inFlightPages === 0) return;
    const busy = this.#inFlight.subarray(firstIndex, firstIndex + count).indexOf(1);
    if (busy >= 0) {
      throw new Error(`page ${firstIndex + busy} is still being written in the background (a stable write): it cannot be written again before commit()`);
    }
  }

  /** The CRC32s of pages firstIndex, firstIndex + 1, ... of a stable write. */
  #giveCrcs(firstIndex: number, crcs: Uint32Array): void {
    this.#checkOpen();
    const written = this.#written;
    for (let i = 0; i < crcs.length; i++) {
      const index = firstIndex + i;
      if (written[index] !== CRC_OWED) {
        throw new RangeError(`internal: page ${index} ${index >= this.pageCount ? 'is outside the image' : written[index] ? 'has its CRC already' : 'was not written'}`);
      }
    }
    this.#crcs.set(crcs, firstIndex);
    written.fill(WRITTEN, firstIndex, firstIndex + crcs.length);
    this.#owed -= crcs.length;
  }

  /**
   * Starts an fdatasync of everything written so far on libuv's thread pool (a durable
   * writer only; none if one is running): the disk writes back while this thread works
   * on. commit() waits for it.
   */
  #startWritebackNow(): void {
    this.#checkOpen();
    this.#guard(() => this.#flushStage());
    if (this.#durable && !this.#writeback) this.#startWriteback();
  }

  /** commit() once every background write and writeback is done: metadata, header, fdatasync, signature, fdatasync. */
  #commitNow(options: CommitOptions = {}): CommitResult {
    this.#checkOpen();
    const context = options.context ?? this.#options.context;
    if (!context) throw new TypeError('commit: no saved context: pass it to the ImageWriter or to commit({ context })');
    checkContext(context);
    if (options.stats) checkStats(options.stats);
    if (this.#missing > 0) {
      const first = this.#written.indexOf(0);
      throw new ImageError(
        'INCOMPLETE_IMAGE',
        `cannot commit the image on ${this.device.path}: ${this.#missing} of ${this.pageCount} pages were never written (first: page ${first}, PFN ${hex(this.#pfns[first]!)})`,
        { path: this.device.path, index: first, pfn: this.#pfns[first]!, count: this.#missing },
      );
    }
    if (this.#owed > 0) {
      const first = this.#written.indexOf(CRC_OWED);
      throw new ImageError(
        'INCOMPLETE_IMAGE',
        `cannot commit the image on ${this.device.path}: ${this.#owed} pages were written without their CRCs, which were never given (first: page ${first}, PFN ${hex(this.#pfns[first]!)})`,
        { path: this.device.path, index: first, pfn: this.#pfns[first]!, count: this.#owed },
      );
    }
    return this.#guard(() => {
      this.#throwWritebackError();
      this.#flushStage();
      const stats = mergeStats(this.#options.stats, options.stats, this.#rewritten);
      const metadata = encodeMetadata(this.#pfns, this.#crcs);
      const metadataCrc = crc32(metadata.subarray(0, this.extent.metadataBytes));
      const { page: headerPage, headerCrc } = encodeHeader({
        frameCount: this.#options.frameCount,
        pageCount: this.pageCount,
        buildId: this.#buildId,
        ramBytes: this.#options.ramBytes,
        extent: this.extent,
        strategy: this.#options.strategy,
        stats,
        context,
        metadataCrc,
      });
      this.#discardOldImage();
      this.device.writeAt(metadata, this.extent.metadataOffset);
      this.device.writeAt(headerPage, HEADER_OFFSET);
      if (this.#durable) this.device.syncData();
      // The point of no return for the suspend side: from here on the image resumes.
      markImage(this.device, HEADER_OFFSET, headerCrc, { durable: this.#durable });
      this.#state = 'committed';
      return {
        imageBytes: this.extent.imageBytes,
        pageCount: this.pageCount,
        headerCrc,
        metadataCrc,
        pageBytesWritten: this.#pageBytesWritten,
        directPageBytes: this.#directPageBytes,
        rewrittenPages: this.#rewritten,
        stats,
      };
    });
  }

  #checkOpen(): void {
    if (this.#state !== 'open') {
      throw new ImageError('WRITER_CLOSED', `the image writer for ${this.device.path} is ${this.#state === 'committed' ? 'committed' : 'closed after a failed write'}`, { path: this.device.path });
    }
  }

  /** Runs a step that writes; if it throws, the writer is unusable (its view of the file is unknown). */
  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (err) {
      this.#state = 'failed';
      throw err;
    }
  }

  #discardOldImage(): void {
    if (!this.#mustDiscardOldImage) return;
    this.#mustDiscardOldImage = false;
    resetSignature(this.device, { durable: this.#durable });
  }

  #stageOrWrite(firstIndex: number, data: Uint8Array): void {
    const direct = data.length >= Math.min(DIRECT_WRITE_BYTES, this.#stageBytes);
    if (!direct && this.#stagePages > 0 && firstIndex === this.#stageFirst + this.#stagePages && (this.#stagePages * PAGE_SIZE) + data.length <= this.#stageBytes) {
      this.#stage.set(data, this.#stagePages * PAGE_SIZE);
      this.#stagePages += data.length / PAGE_SIZE;
      return;
    }
    this.#flushStage();
    if (direct) {
      this.#writeData(firstIndex, data);
      return;
    }
    this.#stage.set(data, 0);
    this.#stageFirst = firstIndex;
    this.#stagePages = data.length / PAGE_SIZE;
  }

  #flushStage(): void {
    if (this.#stagePages === 0) return;
    const pages = this.#stagePages;
    this.#stagePages = 0;
    this.#writeData(this.#stageFirst, this.#stage.subarray(0, pages * PAGE_SIZE));
  }

  #writeData(firstIndex: number, data: Uint8Array): void {
    this.#discardOldImage();
    this.device.writeAt(data, this.extent.dataOffset + firstIndex * PAGE_SIZE);
  }
}

// ---------------------------------------------------------------------------
// Option checks (caller bugs: RangeError/TypeError, not ImageError).

function checkPfns(pfns: Uint32Array, frameCount: number): void {
  if (!(pfns instanceof Uint32Array)) throw new TypeError('pfns must be a Uint32Array');
  if (!Number.isInteger(frameCount) || frameCount < 1 || frameCount > MAX_FRAMES) throw new RangeError(`frameCount must be 1..${MAX_FRAMES}, got ${frameCount}`);
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (pfn >= frameCount) throw new RangeError(`pfns[${i}] = ${hex(pfn)} is not below frameCount ${frameCount}`);
    if (i > 0 && pfn <= pfns[i - 1]!) throw new RangeError(`pfns must be strictly ascending: pfns[${i}] = ${hex(pfn)} follows ${hex(pfns[i - 1]!)}`);
  }
}

function buildIdBytes(buildId: string | Uint8Array): Uint8Array {
  if (typeof buildId === 'string') {
    if (!/^[0-9a-fA-F]{64}$/.test(buildId)) throw new RangeError(`buildId must be 64 hex digits (sha256), got "${buildId}"`);
    return Uint8Array.from(Buffer.from(buildId, 'hex'));
  }
  if (buildId.length !== BUILD_ID_BYTES) throw new RangeError(`buildId must be ${BUILD_ID_BYTES} bytes, got ${buildId.length}`);
  return buildId.slice();
}

function checkContext(context: SavedContext): void {
  if (!Number.isInteger(context.address) || context.address < 0 || context.address > 0xffffffff) throw new RangeError(`context.address must be a u32, got ${context.address}`);
  if (context.bytes.length !== CONTEXT_BYTES) throw new RangeError(`context.bytes must be ${CONTEXT_BYTES} bytes (struct saved_context), got ${context.bytes.length}`);
}

/** Zero, then the constructor's stats, then commit's; undefined values do not override. */
function mergeStats(first: ImageStatsInput | undefined, last: ImageStatsInput | undefined, rewrittenPages: number): ImageStats {
  const merged: Record<string, number> = { ...ZERO_STATS };
  for (const stats of [first, last]) {
    for (const [key, value] of Object.entries(stats ?? {})) if (value !== undefined) merged[key] = value;
  }
  merged['rewrittenPages'] = rewrittenPages;
  return merged as unknown as ImageStats;
}

function checkStats(stats: ImageStatsInput): void {
  for (const [key, value] of Object.entries(stats)) {
    if (key === 'rewrittenPages') throw new TypeError('stats.rewrittenPages is counted by the writer; do not pass it');
    if (!(key in ZERO_STATS)) throw new TypeError(`stats.${key} is not an image stat (known: ${Object.keys(ZERO_STATS).join(', ')})`);
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > 0xffffffff)) throw new RangeError(`stats.${key} must be a u32, got ${value}`);
  }
}
