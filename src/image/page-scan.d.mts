// Types of page-scan.mjs.

export interface ScanJob {
  /** File descriptor of the swap device (shared by the threads of this process). */
  readonly fd: number;
  /** File offset of page 0. */
  readonly dataOffset: number;
  readonly pageCount: number;
  readonly chunkPages: number;
  /** The recorded CRC32 of every page. */
  readonly crcs: Uint32Array;
  /** The image's swap map (mappedPieces); absent or empty: the data lies where dataOffset says. */
  readonly extents?: Uint32Array;
  /**
   * [0]: the next chunk number; in a SharedArrayBuffer when two threads share the scan.
   * [1], if there: 0 until the CRC thread begins the job (it sets 1) or the main thread
   * closes it unbegun (2; the CRC thread then does nothing).
   */
  readonly counter: Int32Array;
  /** A compressed image: the stored size of every page, and where page i's stored bytes begin (from dataOffset; pageCount + 1 entries). */
  readonly sizes?: Uint32Array;
  readonly offsets?: Float64Array;
}

export interface ScanResult {
  /** Chunks this scan took and checked. */
  readonly chunks: number;
  readonly badPages: number;
  /** The lowest-numbered bad page this scan found. */
  readonly first?: { readonly index: number; readonly expected: number; readonly actual: number };
  /** The file ended at this offset inside a chunk. */
  readonly short?: number;
}

/** out[index + i] = the CRC32 of page i of data (whole pages): crc.ts's crc32Pages. */
export type CrcPages = (data: Uint8Array, out: Uint32Array, index: number) => void;

export function comparePageCrcs(chunk: Uint8Array, crcs: Uint32Array, firstIndex: number, crcPages: CrcPages, broken?: Uint8Array): Pick<ScanResult, 'badPages' | 'first'>;

/** Decodes one LZ4 block into dst, which it must fill exactly; false if the block is malformed. */
export function lz4DecodeBlock(src: Uint8Array, dst: Uint8Array): boolean;

/** Expands count stored pages (sizes from firstIndex) into out; 1 per page that would not decompress. */
export function expandPages(stored: Uint8Array, sizes: Uint32Array, firstIndex: number, count: number, out: Uint8Array): Uint8Array;

export function scanChunks(job: ScanJob, crcPages: CrcPages, buffer: Uint8Array): ScanResult;

/** [physical offset, offset into the range, bytes] of each piece of a logical range through a swap map. */
export function mappedPieces(extents: Uint32Array | undefined, offset: number, length: number): Array<[number, number, number]>;

/** Reads buffer.length bytes of the logical range at offset through the swap map; returns the bytes read before the first short read. */
export function readMapped(fd: number, buffer: Uint8Array, offset: number, extents: Uint32Array | undefined): number;
