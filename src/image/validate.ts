/**
 * validateImage: decides whether an image may be resumed, before a single guest byte
 * is touched (swap.c: swsusp_check, then the CRC checks of the read path).
 *
 * The checks run in a fixed order, each on facts the previous ones made trustworthy:
 *
 *   1. signature         NO_SIGNATURE, BAD_SIGNATURE
 *   2. header in file    TRUNCATED (the header page the signature points at is cut)
 *   3. header            BAD_MAGIC, UNSUPPORTED_VERSION, BAD_HEADER_CRC,
 *                        SIGNATURE_MISMATCH (header CRC vs the one in the signature)
 *   4. header limits     BAD_METADATA (sizes, offsets and counts the header claims)
 *   5. regions in file   TRUNCATED (metadata or data cut)
 *   6. metadata          BAD_METADATA (CRC, PFNs ascending and below frame_count)
 *   7. expectations      WRONG_BUILD, WRONG_RAM_SIZE
 *   8. every page        BAD_PAGE_CRC (first bad page and the count)
 *
 * Every number read from the file is bounded before it is used: counts by MAX_FRAMES,
 * regions by the file size, so a hostile file cannot make validation allocate more than
 * 12 MiB of metadata or read outside the file. Pages are read in chunks (1 MiB by
 * default: it stays in the CPU cache between the read and the CRCs) into one reused
 * buffer. validateImageAsync can share those chunks with a CRC thread (crc-thread.ts),
 * so that the scan runs on two cores. Validation only reads: a path is opened read-only.
 */

import { crc32, crc32Pages } from './crc.ts';

import { ImageError, bytesText, hex, hex32, mibText, shortId } from './errors.ts';
import {
  COMPRESSION, CONTEXT_BYTES, FORMAT_VERSION, HEADER_SIZE, IMAGE_MAGIC, MAX_EXTENTS, MAX_FRAMES, PAGE_SIZE, SECTOR_SIZE, metadataBytesPerPage,
  SWAP_SIGNATURE, decodeHeader, decodeMetadata, headerCrcOf, roundUpToPage, toHex,
  type ImageHeader, type Signature,
} from './layout.ts';
import type { CrcThread } from './crc-thread.ts';
import { comparePageCrcs as comparePages, scanChunks, type ScanResult } from './page-scan.mjs';
import { SwapDevice } from './swap-device.ts';

/** What the running machine is: an image from anything else is refused. */
export interface ImageExpectations {
  /** sha256 of the running guest ELF, 64 hex digits. */
  readonly buildId: string;
  /** RAM size of the running guest. */
  readonly ramBytes: number;
}

export interface ValidateOptions {
  /** Bytes read at a time while checking page CRCs (a multiple of 4096). Default: 1 MiB. */
  readonly chunkBytes?: number;
  /**
   * A second thread for the page CRCs (validateImageAsync only): the two threads share
   * the chunks, so the scan runs on two cores. Without one, or if it is busy or gone,
   * the calling thread scans alone.
   */
  readonly crcThread?: CrcThread;
}

/** An image that passed every check; give it to an ImageReader. */
export interface ValidatedImage {
  readonly path: string;
  readonly header: ImageHeader;
  /** PFN of page i, strictly ascending. */
  readonly pfns: Uint32Array;
  /**
   * The same PFNs as bitmap words over the image's frame_count (word w = frames 32w ..
   * 32w+31), made in the same pass that checks them: for restores that work word by word.
   */
  readonly pfnWords: Uint32Array;
  /** CRC32 of page i, as recorded by the writer. */
  readonly crcs: Uint32Array;
  /** Byte offset of page 0; page i is at dataOffset + i * 4096 (compressed: dataOffset + packing.offsets[i]). */
  readonly dataOffset: number;
  /** A compressed image (header compression LZ4): each page's stored size and where it begins. */
  readonly packing?: Packing;
  /** Bytes from the start of the device to the end of the data. */
  readonly imageBytes: number;
  /** SwapDevice.version() of the file the checks read; a reader re-checks CRCs only if it changed. */
  readonly fileVersion: string;
  /** The page scan: chunks checked, and how many of them on the CRC thread. */
  readonly scan: { readonly chunks: number; readonly crcThreadChunks: number };
}

/** Where the stored pages of a compressed image lie: sizes[i] bytes at data offset offsets[i] (offsets has one more entry: the end). */
export interface Packing {
  readonly sizes: Uint32Array;
  readonly offsets: Float64Array;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;

/** Validates the image on `target` (a device, or a path opened read-only); throws ImageError. */
export function validateImage(target: SwapDevice | string, expect: ImageExpectations, options: ValidateOptions = {}): ValidatedImage {
  const chunkBytes = checkOptions(expect, options);
  const dev = typeof target === 'string' ? SwapDevice.open(target) : target;
  try {
    for (;;) {
      const facts = checkAllButPages(dev, expect);
      const scan = scanPages(dev, facts.header, facts.pfns, facts.crcs, chunkBytes, facts.packing);
      const valid = afterScan(dev, facts, scan);
      if (valid) return valid;
    }
  } finally {
    if (typeof target === 'string') dev.close();
  }
}

/**
 * validateImage with the page CRCs shared with options.crcThread, if given: the same
 * checks in the same order, the same errors.
 */
export async function validateImageAsync(target: SwapDevice | string, expect: ImageExpectations, options: ValidateOptions = {}): Promise<ValidatedImage> {
  const chunkBytes = checkOptions(expect, options);
  const dev = typeof target === 'string' ? SwapDevice.open(target) : target;
  try {
    for (;;) {
      const facts = checkAllButPages(dev, expect);
      const scan = await scanPagesShared(dev, facts.header, facts.pfns, facts.crcs, chunkBytes, options.crcThread, facts.packing);
      const valid = afterScan(dev, facts, scan);
      if (valid) return valid;
    }
  } finally {
    if (typeof target === 'string') dev.close();
  }
}

/** A validation begun ahead of the moment its verdict is needed (beginImageValidation). */
export interface ImageValidation {
  /** The verdict: what validateImageAsync would return, or the error it would throw. */
  finish(): Promise<ValidatedImage>;
  /** Gives the validation up if finish() was not called: stops the CRC thread's scan and waits until it no longer reads the device. */
  cancel(): Promise<void>;
}

/**
 * validateImageAsync in two halves, for a caller that has other work for this thread
 * first (a resume boots the boot kernel): the signature, header, metadata and
 * expectations are checked now, and the page scan starts on options.crcThread, which
 * scans alone meanwhile; finish() has this thread take the chunks the CRC thread has not
 * reached yet and gives the verdict. Same checks, same errors (an error found now is
 * thrown by finish()); if the file changed before the verdict, finish() checks it all
 * again. Without a CRC thread the scan waits for finish().
 */
export function beginImageValidation(dev: SwapDevice, expect: ImageExpectations, options: ValidateOptions = {}): ImageValidation {
  const chunkBytes = checkOptions(expect, options);
  let facts: CheckedFacts;
  try {
    facts = checkAllButPages(dev, expect);
  } catch (err) {
    return { finish: () => Promise.reject(err), cancel: async () => {} };
  }
  const scan = startSharedScan(dev, facts.header, facts.pfns, facts.crcs, chunkBytes, options.crcThread, facts.packing);
  return {
    async finish() {
      return afterScan(dev, facts, await scan.join()) ?? validateImageAsync(dev, expect, options);
    },
    cancel: () => scan.cancel(),
  };
}

/**
 * The RAM size the image on `dev` records, if its signature and header are sound (steps
 * 1 to 3); undefined when there is no image or it is broken (the validation then says
 * why). What a resume boots the boot kernel with when it is told no RAM size.
 */
export function imageRamBytes(dev: SwapDevice): number | undefined {
  try {
    dev.mapImage(undefined);
    const { headerOffset, headerCrc } = checkSignature(dev.readSignature(), dev.path);
    return checkHeader(readHeaderPage(dev, headerOffset, dev.bytes), headerOffset, headerCrc, dev.path).ramBytes;
  } catch (err) {
    if (err instanceof ImageError) return undefined;
    throw err;
  }
}

function checkOptions(expect: ImageExpectations, options: ValidateOptions): number {
  if (!/^[0-9a-fA-F]{64}$/.test(expect.buildId)) throw new RangeError(`expect.buildId must be 64 hex digits (sha256), got "${expect.buildId}"`);
  return checkChunkBytes(options.chunkBytes);
}

interface CheckedFacts {
  readonly fileVersion: string;
  readonly header: ImageHeader;
  readonly pfns: Uint32Array;
  readonly pfnWords: Uint32Array;
  readonly crcs: Uint32Array;
  readonly packing?: Packing;
}

/** Steps 1 to 7. */
function checkAllButPages(dev: SwapDevice, expect: ImageExpectations): CheckedFacts {
  const path = dev.path;
  const fileVersion = dev.version();
  dev.mapImage(undefined); // the signature and the header lie where they are
  const { headerOffset, headerCrc } = checkSignature(dev.readSignature(), path);
  const fileBytes = dev.bytes;
  const page = readHeaderPage(dev, headerOffset, fileBytes);
  const header = checkHeader(page, headerOffset, headerCrc, path);
  checkHeaderLimits(header, headerOffset, path);
  checkRegionsInFile(header, fileBytes, path);
  dev.mapImage(header.extents); // the metadata and the data: through the swap map
  const { pfns, pfnWords, crcs, packing } = readMetadata(dev, header);
  checkExpectations(header, expect, path);
  return packing ? { fileVersion, header, pfns, pfnWords, crcs, packing } : { fileVersion, header, pfns, pfnWords, crcs };
}

/** Step 8's verdict; undefined when the file changed while it was read (then: check again). */
function afterScan(dev: SwapDevice, facts: CheckedFacts, scan: PageScan): ValidatedImage | undefined {
  const { header, pfns, pfnWords, crcs, fileVersion, packing } = facts;
  if (scan.badPages > 0) throw pageCrcError(dev.path, header, pfns, scan, packing);
  // Written while we read? Then what we checked may not be what is there.
  if (dev.version() !== fileVersion) return undefined;
  return {
    path: dev.path, header, pfns, pfnWords, crcs, dataOffset: header.dataOffset, imageBytes: header.dataOffset + header.dataBytes, fileVersion,
    scan: { chunks: scan.chunks, crcThreadChunks: scan.crcThreadChunks }, ...(packing ? { packing } : {}),
  };
}

// ---------------------------------------------------------------------------
// The steps, in order. inspect.ts runs the same steps and reports instead of throwing.

/** Step 1: the device must hold an image signature pointing at a page-aligned offset. */
export function checkSignature(sig: Signature, path: string): { headerOffset: number; headerCrc: number } {
  if (sig.kind === 'swap') {
    throw new ImageError('NO_SIGNATURE', `no hibernation image on ${path}: it has the swap signature "${SWAP_SIGNATURE}"`, { path, offset: 0 });
  }
  if (sig.kind === 'unknown' || sig.headerOffset === undefined || sig.headerCrc === undefined) {
    throw new ImageError('BAD_SIGNATURE', `${path} is neither a swap device nor a hibernation image: sector 0 starts with ${sig.rawHex || '(nothing: the file is empty)'}`, { path, offset: 0, actual: sig.rawHex });
  }
  if (sig.headerOffset < PAGE_SIZE || sig.headerOffset % PAGE_SIZE !== 0) {
    throw new ImageError('BAD_SIGNATURE', `the image signature of ${path} points at header offset ${sig.headerOffset}, which is not a page boundary after sector 0`, { path, offset: 0, actual: sig.headerOffset });
  }
  return { headerOffset: sig.headerOffset, headerCrc: sig.headerCrc };
}

/** Step 2: reads the header page (TRUNCATED if the file ends before it does). */
export function readHeaderPage(dev: SwapDevice, headerOffset: number, fileBytes: number): Uint8Array {
  if (fileBytes < headerOffset + PAGE_SIZE) {
    throw new ImageError('TRUNCATED', `${dev.path} is truncated: the image header page ends at byte ${headerOffset + PAGE_SIZE} but the file has ${bytesText(fileBytes)}`, { path: dev.path, offset: headerOffset, expected: headerOffset + PAGE_SIZE, actual: fileBytes });
  }
  const page = new Uint8Array(PAGE_SIZE);
  const got = dev.readAt(page, headerOffset);
  if (got < PAGE_SIZE) throw truncatedWhileReading(dev.path, headerOffset + got);
  return page;
}

/** Step 3: magic, version, header CRC, and the header CRC against the signature's. */
export function checkHeader(page: Uint8Array, headerOffset: number, signatureCrc: number, path: string): ImageHeader {
  const header = decodeHeader(page);
  if (header.magic !== IMAGE_MAGIC) {
    const raw = toHex(page.subarray(0, IMAGE_MAGIC.length));
    throw new ImageError('BAD_MAGIC', `no image header at offset ${headerOffset} of ${path}: it starts with ${raw}, expected "${IMAGE_MAGIC}"`, { path, offset: headerOffset, expected: IMAGE_MAGIC, actual: raw });
  }
  if (header.version !== FORMAT_VERSION) {
    throw new ImageError('UNSUPPORTED_VERSION', `the image on ${path} has format version ${header.version}; this build reads version ${FORMAT_VERSION}`, { path, offset: headerOffset, expected: FORMAT_VERSION, actual: header.version });
  }
  const computed = headerCrcOf(page);
  if (computed !== header.headerCrc) {
    throw new ImageError('BAD_HEADER_CRC', `the image header at offset ${headerOffset} of ${path} is corrupt: stored CRC ${hex32(header.headerCrc)}, computed ${hex32(computed)}`, { path, offset: headerOffset, expected: header.headerCrc, actual: computed });
  }
  if (header.headerCrc !== signatureCrc) {
    throw new ImageError('SIGNATURE_MISMATCH', `the image header at offset ${headerOffset} of ${path} is not the one its signature recorded: header CRC ${hex32(header.headerCrc)}, signature says ${hex32(signatureCrc)}`, { path, offset: headerOffset, expected: signatureCrc, actual: header.headerCrc });
  }
  return header;
}

/** Step 4: every size, offset and count in the header is possible and consistent. */
export function checkHeaderLimits(header: ImageHeader, headerOffset: number, path: string): void {
  const bad = (what: string, actual: number, expected?: number): ImageError =>
    new ImageError('BAD_METADATA', `the image header of ${path} claims ${what}`, { path, offset: headerOffset, actual, ...(expected === undefined ? {} : { expected }) });
  const n = header.pageCount;
  if (header.headerSize !== HEADER_SIZE) throw bad(`header_size ${header.headerSize}, but version ${FORMAT_VERSION} headers are ${HEADER_SIZE} bytes`, header.headerSize, HEADER_SIZE);
  if (header.pageSize !== PAGE_SIZE) throw bad(`page_size ${header.pageSize}, expected ${PAGE_SIZE}`, header.pageSize, PAGE_SIZE);
  if (header.contextSize !== CONTEXT_BYTES) throw bad(`context_size ${header.contextSize}, expected ${CONTEXT_BYTES}`, header.contextSize, CONTEXT_BYTES);
  if (header.frameCount < 1 || header.frameCount > MAX_FRAMES) throw bad(`frame_count ${header.frameCount}, outside 1..${MAX_FRAMES}`, header.frameCount, MAX_FRAMES);
  if (n > header.frameCount) throw bad(`page_count ${n}, more than frame_count ${header.frameCount}`, n, header.frameCount);
  // Version 1 has no gaps: the metadata follows the header page, the data follows the
  // metadata's last page, so the layout is a function of page_count alone.
  if (header.metadataOffset !== headerOffset + PAGE_SIZE) {
    throw bad(`metadata_offset ${header.metadataOffset}, expected ${headerOffset + PAGE_SIZE} (the page after the header)`, header.metadataOffset, headerOffset + PAGE_SIZE);
  }
  if (header.compression !== COMPRESSION.NONE && header.compression !== COMPRESSION.LZ4) {
    throw bad(`compression ${header.compression}, which this build does not know (${COMPRESSION.NONE}: none, ${COMPRESSION.LZ4}: LZ4)`, header.compression);
  }
  const perPage = metadataBytesPerPage(header.compression);
  if (header.metadataBytes !== n * perPage) throw bad(`metadata_bytes ${header.metadataBytes} for ${n} pages (expected ${n * perPage})`, header.metadataBytes, n * perPage);
  const dataOffset = header.metadataOffset + roundUpToPage(header.metadataBytes);
  if (header.dataOffset !== dataOffset) {
    throw bad(`data_offset ${header.dataOffset}, expected ${dataOffset} (the page after the metadata)`, header.dataOffset, dataOffset);
  }
  if (header.compression === COMPRESSION.NONE && header.dataBytes !== n * PAGE_SIZE) throw bad(`data_bytes ${header.dataBytes} for ${n} pages (expected ${n * PAGE_SIZE})`, header.dataBytes, n * PAGE_SIZE);
  if (header.compression !== COMPRESSION.NONE && (header.dataBytes < n || header.dataBytes > n * PAGE_SIZE)) {
    throw bad(`data_bytes ${header.dataBytes} for ${n} compressed pages (between ${n} and ${n * PAGE_SIZE})`, header.dataBytes, n * PAGE_SIZE);
  }
  checkSwapMap(header, headerOffset, bad);
}

/** Step 4, the swap map: bounded, covering the signature and header where they are, the whole image, no sector twice. */
function checkSwapMap(header: ImageHeader, headerOffset: number, bad: (what: string, actual: number, expected?: number) => ImageError): void {
  if (header.extentCount > MAX_EXTENTS) throw bad(`a swap map of ${header.extentCount} extents (at most ${MAX_EXTENTS})`, header.extentCount, MAX_EXTENTS);
  const e = header.extents;
  if (e.length === 0) return;
  if (e[0] !== 0 || e[1]! * SECTOR_SIZE < headerOffset + PAGE_SIZE) {
    throw bad(`a swap map whose first extent (sector ${e[0]}, ${e[1]} sectors) does not begin at sector 0 and cover the header`, e[0]!, 0);
  }
  let sectors = 0;
  const order: number[] = [];
  for (let i = 0; i < e.length; i += 2) {
    if (e[i + 1] === 0) throw bad(`an empty extent ${i / 2} in its swap map`, 0);
    sectors += e[i + 1]!;
    order.push(i);
  }
  const imageBytes = header.dataOffset + header.dataBytes;
  if (sectors * SECTOR_SIZE < imageBytes) throw bad(`a swap map of ${sectors * SECTOR_SIZE} bytes for an image of ${imageBytes}`, sectors * SECTOR_SIZE, imageBytes);
  order.sort((a, b) => e[a]! - e[b]!);
  for (let k = 1; k < order.length; k++) {
    const [p, q] = [order[k - 1]!, order[k]!];
    if (e[p]! + e[p + 1]! > e[q]!) throw bad(`extents ${p / 2} and ${q / 2} of its swap map on the same sectors (from sector ${e[q]})`, e[q]!);
  }
}

/** Step 5: the metadata and data the header claims are inside the file. */
export function checkRegionsInFile(header: ImageHeader, fileBytes: number, path: string): void {
  const e = header.extents;
  for (let i = 0; i < e.length; i += 2) {
    const end = (e[i]! + e[i + 1]!) * SECTOR_SIZE;
    if (end > fileBytes) {
      throw new ImageError('TRUNCATED', `${path} is truncated: extent ${i / 2} of the image's swap map ends at byte ${end} but the file has ${bytesText(fileBytes)}`, { path, offset: e[i]! * SECTOR_SIZE, expected: end, actual: fileBytes });
    }
  }
  if (e.length) return; // the regions are logical offsets: the map says where they are
  const regions: Array<[string, number, number]> = [
    ['metadata', header.metadataOffset, header.metadataBytes],
    [`data (${header.pageCount} pages)`, header.dataOffset, header.dataBytes],
  ];
  for (const [name, offset, bytes] of regions) {
    if (offset + bytes > fileBytes) {
      throw new ImageError('TRUNCATED', `${path} is truncated: the image's ${name} region ends at byte ${offset + bytes} but the file has ${bytesText(fileBytes)}`, { path, offset, expected: offset + bytes, actual: fileBytes });
    }
  }
}

/** Step 6: reads the metadata and checks its CRC, the PFN order and range (and makes pfnWords on the way). */
export function readMetadata(dev: SwapDevice, header: ImageHeader): { pfns: Uint32Array; pfnWords: Uint32Array; crcs: Uint32Array; packing?: Packing } {
  const path = dev.path;
  const bytes = new Uint8Array(header.metadataBytes);
  const got = dev.readAt(bytes, header.metadataOffset);
  if (got < bytes.length) throw truncatedWhileReading(path, header.metadataOffset + got);
  const computed = crc32(bytes);
  if (computed !== header.metadataCrc) {
    throw new ImageError('BAD_METADATA', `the image metadata at offset ${header.metadataOffset} of ${path} is corrupt: stored CRC ${hex32(header.metadataCrc)}, computed ${hex32(computed)}`, { path, offset: header.metadataOffset, expected: header.metadataCrc, actual: computed });
  }
  const { pfns, crcs, sizes } = decodeMetadata(bytes, header.pageCount, header.compression !== COMPRESSION.NONE);
  const pfnWords = new Uint32Array(Math.ceil(header.frameCount / 32));
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (i > 0 && pfn <= pfns[i - 1]!) {
      throw new ImageError('BAD_METADATA', `the PFNs in the image metadata of ${path} are not ascending: entry ${i} (PFN ${hex(pfn)}) follows entry ${i - 1} (PFN ${hex(pfns[i - 1]!)})`, { path, offset: header.metadataOffset + i * 4, index: i, pfn });
    }
    if (pfn >= header.frameCount) {
      throw new ImageError('BAD_METADATA', `entry ${i} of the image metadata of ${path} is PFN ${hex(pfn)}, beyond the ${header.frameCount} frames of the image`, { path, offset: header.metadataOffset + i * 4, index: i, pfn, expected: header.frameCount });
    }
    pfnWords[pfn >>> 5] = (pfnWords[pfn >>> 5]! | (1 << (pfn & 31))) >>> 0;
  }
  if (!sizes) return { pfns, pfnWords, crcs };
  const offsets = new Float64Array(pfns.length + 1);
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    if (size < 1 || size > PAGE_SIZE) {
      throw new ImageError('BAD_METADATA', `entry ${i} of the image metadata of ${path} gives page ${i} a stored size of ${size} bytes, outside 1..${PAGE_SIZE}`, { path, offset: header.metadataOffset + (2 * pfns.length + i) * 4, index: i, actual: size });
    }
    offsets[i + 1] = offsets[i]! + size;
  }
  if (offsets[pfns.length] !== header.dataBytes) {
    throw new ImageError('BAD_METADATA', `the stored sizes in the image metadata of ${path} add up to ${offsets[pfns.length]} bytes, but data_bytes is ${header.dataBytes}`, { path, offset: header.metadataOffset, expected: header.dataBytes, actual: offsets[pfns.length]! });
  }
  return { pfns, pfnWords, crcs, packing: { sizes, offsets } };
}

/** Step 7: the image belongs to this guest build and this RAM size. */
export function checkExpectations(header: ImageHeader, expect: ImageExpectations, path: string): void {
  const running = expect.buildId.toLowerCase();
  if (header.buildId !== running) {
    throw new ImageError('WRONG_BUILD', `the image on ${path} was written by guest build ${shortId(header.buildId)}, but the running guest is ${shortId(running)}`, { path, expected: running, actual: header.buildId });
  }
  if (header.ramBytes !== expect.ramBytes) {
    throw new ImageError('WRONG_RAM_SIZE', `the image on ${path} is for ${mibText(header.ramBytes)} of RAM, but this machine has ${mibText(expect.ramBytes)}`, { path, expected: expect.ramBytes, actual: header.ramBytes });
  }
}

export interface PageScan {
  /** Chunks checked in all, and how many of them the CRC thread checked. */
  readonly chunks: number;
  readonly crcThreadChunks: number;
  readonly badPages: number;
  /** The first bad page, if any. */
  readonly first?: { readonly index: number; readonly expected: number; readonly actual: number };
}

/** Step 8: CRC of every page against the metadata, reading chunkBytes at a time. */
export function scanPages(dev: SwapDevice, header: ImageHeader, pfns: Uint32Array, crcs: Uint32Array, chunkBytes = DEFAULT_CHUNK_BYTES, packing?: Packing): PageScan {
  const job = scanJob(dev, header, pfns, crcs, chunkBytes, packing);
  return checkedScan(dev, scanChunks({ ...job, counter: new Int32Array(1) }, crc32Pages, scanBuffer(header, chunkBytes)));
}

/**
 * scanPages on two threads, this one and `thread` (when it is there and free): both take
 * chunks from one shared counter. If the thread fails or dies, this one scans it all again.
 */
export async function scanPagesShared(dev: SwapDevice, header: ImageHeader, pfns: Uint32Array, crcs: Uint32Array, chunkBytes = DEFAULT_CHUNK_BYTES, thread?: CrcThread, packing?: Packing): Promise<PageScan> {
  return startSharedScan(dev, header, pfns, crcs, chunkBytes, thread, packing).join();
}

/**
 * Starts the shared scan: the CRC thread begins taking chunks now; join() has this
 * thread take the rest and combines both results. cancel() (instead of join) stops the
 * thread after its current chunk and waits for it; a thread that has not begun will
 * read nothing and is not waited for.
 */
function startSharedScan(
  dev: SwapDevice, header: ImageHeader, pfns: Uint32Array, crcs: Uint32Array, chunkBytes: number, thread?: CrcThread, packing?: Packing,
): { join(): Promise<PageScan>; cancel(): Promise<void> } {
  const job = scanJob(dev, header, pfns, crcs, chunkBytes, packing);
  if (!thread?.available || pfns.length <= job.chunkPages) {
    return { join: async () => scanPages(dev, header, pfns, crcs, chunkBytes, packing), cancel: async () => {} };
  }
  const shared = new SharedArrayBuffer(8);
  const counter = new Int32Array(shared);
  const theirs = thread.run({ ...job, counter: shared });
  /**
   * Closes the job if the thread has not begun it (a worker still starting up: tens of ms,
   * more while the boot kernel boots beside it); it will then do nothing, and nobody
   * waits for it. Returns whether the thread began.
   */
  const closeIfUnbegun = (): boolean => Atomics.compareExchange(counter, 1, 0, 2) !== 0;
  const stop = async (): Promise<void> => {
    Atomics.store(counter, 0, Math.ceil(pfns.length / job.chunkPages)); // the thread takes no more chunks
    if (closeIfUnbegun()) await theirs; // it reads our descriptor until then
  };
  return {
    async join() {
      let mine: ScanResult;
      try {
        mine = scanChunks({ ...job, counter }, crc32Pages, scanBuffer(header, chunkBytes));
      } catch (err) {
        await stop();
        throw err;
      }
      // Every chunk is taken: wait for the thread only if it has one of them.
      const other = closeIfUnbegun() ? await theirs : { chunks: 0, badPages: 0 };
      if (other === undefined || 'error' in other) return scanPages(dev, header, pfns, crcs, chunkBytes, packing);
      if (mine.short !== undefined || other.short !== undefined) {
        throw truncatedWhileReading(dev.path, Math.min(mine.short ?? Infinity, other.short ?? Infinity));
      }
      const badPages = mine.badPages + other.badPages;
      const first = !other.first || (mine.first && mine.first.index < other.first.index) ? mine.first : other.first;
      const chunks = mine.chunks + other.chunks;
      return first ? { chunks, crcThreadChunks: other.chunks, badPages, first } : { chunks, crcThreadChunks: other.chunks, badPages };
    },
    cancel: stop,
  };
}

function scanJob(dev: SwapDevice, header: ImageHeader, pfns: Uint32Array, crcs: Uint32Array, chunkBytes: number, packing?: Packing) {
  return { fd: dev.fileDescriptor, dataOffset: header.dataOffset, pageCount: pfns.length, chunkPages: chunkBytes / PAGE_SIZE, crcs, extents: dev.imageMap, ...packing };
}

function scanBuffer(header: ImageHeader, chunkBytes: number): Uint8Array {
  return new Uint8Array(Math.min(chunkBytes, Math.max(PAGE_SIZE, header.pageCount * PAGE_SIZE)));
}

function checkedScan(dev: SwapDevice, r: ScanResult): PageScan {
  if (r.short !== undefined) throw truncatedWhileReading(dev.path, r.short);
  const counts = { chunks: r.chunks, crcThreadChunks: 0, badPages: r.badPages };
  return r.first ? { ...counts, first: r.first } : counts;
}

/** CRC of each page of `chunk` (pages firstIndex...) against crcs (page-scan.mjs, with crc32Pages). */
export function comparePageCrcs(chunk: Uint8Array, crcs: Uint32Array, firstIndex: number, broken?: Uint8Array): Pick<PageScan, 'badPages' | 'first'> {
  return comparePages(chunk, crcs, firstIndex, crc32Pages, broken);
}

/** BAD_PAGE_CRC for a scan that found bad pages. */
export function pageCrcError(path: string, header: Pick<ImageHeader, 'dataOffset'>, pfns: Uint32Array, scan: Pick<PageScan, 'badPages' | 'first'>, packing?: Packing): ImageError {
  const first = scan.first!;
  const pfn = pfns[first.index]!;
  const offset = header.dataOffset + (packing ? packing.offsets[first.index]! : first.index * PAGE_SIZE);
  const more = scan.badPages > 1 ? `; ${scan.badPages} bad pages in all` : '';
  return new ImageError(
    'BAD_PAGE_CRC',
    `page ${first.index} (PFN ${hex(pfn)}) at offset ${offset} of ${path} is corrupt: stored CRC ${hex32(first.expected)}, computed ${hex32(first.actual)}${more}`,
    { path, offset, index: first.index, pfn, expected: first.expected, actual: first.actual, count: scan.badPages },
  );
}

export function checkChunkBytes(chunkBytes: number | undefined): number {
  const value = chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(value) || value < PAGE_SIZE || value % PAGE_SIZE !== 0) throw new RangeError(`chunkBytes must be a positive multiple of ${PAGE_SIZE}, got ${value}`);
  return value;
}

/** The file got shorter between the size check and the read: it changed under us. */
export function truncatedWhileReading(path: string, endOfFile: number): ImageError {
  return new ImageError('TRUNCATED', `${path} is truncated: the file ended at byte ${endOfFile} while reading the image (did it change?)`, { path, offset: endOfFile, actual: endOfFile });
}
