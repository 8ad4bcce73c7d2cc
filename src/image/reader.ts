/**
 * ImageReader: reads the pages of a validated image (swap.c: swsusp_read).
 *
 * Validation already checked every page, but the file may change between validation
 * and reading (another process, a disk going bad), so every page read is checked
 * against its CRC again. A read is one positioned read straight into the caller's
 * buffer and one CRC pass over it; no copies. A compressed image's stored pages are read
 * into a buffer of the reader's and expanded into the caller's.
 */

import { PAGE_SIZE } from './layout.ts';
import { SwapDevice } from './swap-device.ts';
import { expandPages } from './page-scan.mjs';
import { DEFAULT_CHUNK_BYTES, checkChunkBytes, comparePageCrcs, pageCrcError, truncatedWhileReading, type ValidatedImage } from './validate.ts';

export interface PageChunk {
  /** Index of the first page of the chunk. */
  readonly firstIndex: number;
  /** PFNs of the chunk's pages (a view of the image's PFNs). */
  readonly pfns: Uint32Array;
  /** The pages, pfns.length * 4096 bytes; the buffer is reused by the next chunk. */
  readonly data: Uint8Array;
}

export class ImageReader {
  readonly image: ValidatedImage;
  readonly device: SwapDevice;
  readonly #ownsDevice: boolean;
  #stored = new Uint8Array(0);

  /**
   * Reads `image` from `device`; without a device, opens the image's path read-only
   * (and close() closes it).
   */
  constructor(image: ValidatedImage, device?: SwapDevice) {
    this.image = image;
    this.#ownsDevice = device === undefined;
    this.device = device ?? SwapDevice.open(image.path);
  }

  get pageCount(): number {
    return this.image.pfns.length;
  }

  /**
   * Reads pages firstIndex .. firstIndex+count-1 into `into` (or a new buffer) and returns
   * exactly count * 4096 bytes of it. Throws BAD_PAGE_CRC (first bad page, and the count
   * of bad ones in this range) if the file changed since validation; `into` then holds
   * whatever was read, so never read straight into memory that must stay intact.
   */
  readPages(firstIndex: number, count: number, into?: Uint8Array): Uint8Array {
    const n = this.pageCount;
    if (!Number.isInteger(firstIndex) || !Number.isInteger(count) || firstIndex < 0 || count < 0 || firstIndex + count > n) {
      throw new RangeError(`readPages: pages ${firstIndex}..${firstIndex + count - 1} are outside the image (${n} pages)`);
    }
    const bytes = count * PAGE_SIZE;
    if (into && into.length < bytes) throw new RangeError(`readPages: ${count} pages need ${bytes} bytes, the buffer has ${into.length}`);
    const data = into ? into.subarray(0, bytes) : new Uint8Array(bytes);
    if (this.image.packing) return this.#readCompressed(firstIndex, count, data);
    const offset = this.image.dataOffset + firstIndex * PAGE_SIZE;
    const unchanged = this.device.version() === this.image.fileVersion;
    const got = this.device.readAt(data, offset);
    // Every page was checked by the validation; check again only if the file was written since.
    if (!unchanged || this.device.version() !== this.image.fileVersion) {
      const scan = comparePageCrcs(data.subarray(0, got - (got % PAGE_SIZE)), this.image.crcs, firstIndex);
      if (scan.badPages > 0) throw pageCrcError(this.device.path, this.image, this.image.pfns, scan);
    }
    if (got < bytes) throw truncatedWhileReading(this.device.path, offset + got);
    return data;
  }

  /** readPages of a compressed image: the stored pages, expanded into `data`, checked like readPages's. */
  #readCompressed(firstIndex: number, count: number, data: Uint8Array): Uint8Array {
    const { sizes, offsets } = this.image.packing!;
    const length = offsets[firstIndex + count]! - offsets[firstIndex]!;
    if (this.#stored.length < length) this.#stored = new Uint8Array(Math.max(length, 2 * this.#stored.length));
    const stored = this.#stored.subarray(0, length);
    const offset = this.image.dataOffset + offsets[firstIndex]!;
    const unchanged = this.device.version() === this.image.fileVersion;
    const got = this.device.readAt(stored, offset);
    if (got < length) throw truncatedWhileReading(this.device.path, offset + got);
    const broken = expandPages(stored, sizes, firstIndex, count, data);
    if (!unchanged || this.device.version() !== this.image.fileVersion || broken.includes(1)) {
      const scan = comparePageCrcs(data, this.image.crcs, firstIndex, broken);
      if (scan.badPages > 0) throw pageCrcError(this.device.path, this.image, this.image.pfns, scan, this.image.packing);
    }
    return data;
  }

  /**
   * The whole image in order, chunkBytes at a time (default 1 MiB), each chunk checked:
   * the stream interface of the read path (snapshot_write_next on the resume side).
   */
  *chunks(chunkBytes: number = DEFAULT_CHUNK_BYTES): Generator<PageChunk, void, void> {
    const chunkPages = checkChunkBytes(chunkBytes) / PAGE_SIZE;
    const buffer = new Uint8Array(Math.min(chunkBytes, Math.max(PAGE_SIZE, this.pageCount * PAGE_SIZE)));
    for (let firstIndex = 0; firstIndex < this.pageCount; firstIndex += chunkPages) {
      const count = Math.min(chunkPages, this.pageCount - firstIndex);
      const data = this.readPages(firstIndex, count, buffer);
      yield { firstIndex, pfns: this.image.pfns.subarray(firstIndex, firstIndex + count), data };
    }
  }

  /** Closes the device if the reader opened it. */
  close(): void {
    if (this.#ownsDevice) this.device.close();
  }
}
