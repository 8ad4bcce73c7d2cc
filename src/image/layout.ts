/**
 * The on-disk layout of a swap device and of the hibernation image written on it.
 *
 * A swap device is a regular host file that the guest sees as an IDE disk. The image
 * is laid out in whole pages; every number is little-endian:
 *
 *     offset 0        +----------------------------------------------+
 *                     | signature block (sector 0, 512 bytes)        |  "HLSWAP01": empty swap device
 *                     |   signature, page size, device bytes,        |  "HLIMAGE1": resumable image,
 *                     |   header offset, header CRC (image only)     |   written LAST
 *                     | (rest of page 0: zero)                       |
 *     offset 4096     +----------------------------------------------+
 *                     | image header (2324 bytes, rest of page zero) |
 *                     |   magic "HIBERLAB", version, build id, RAM,  |
 *                     |   counts, region offsets, strategy, stats,   |
 *                     |   saved_context, metadata CRC, header CRC    |
 *     offset 8192     +----------------------------------------------+
 *                     | metadata: page_count x u32 PFN (ascending)   |
 *                     |           page_count x u32 CRC32 of the page |
 *                     | (zero padding to a page boundary)            |
 *     data_offset     +----------------------------------------------+
 *                     | data: page_count x 4096 bytes, in the order  |
 *                     |       of the PFNs in the metadata            |
 *     image end       +----------------------------------------------+
 *                     | unused rest of the device                    |
 *                     +----------------------------------------------+
 *
 * Like the swsusp header of Linux (kernel/power/swap.c), the signature block is what
 * makes an image resumable: the writer puts "HLIMAGE1" there only after everything
 * else is on disk, and the resume path puts the swap signature back once the image is
 * consumed. The signature block fits in one sector because a sector write is the unit
 * a disk writes atomically: the device either holds the old signature or the new one.
 *
 * The field tables below are the single source of the layout: the codecs in this file,
 * the validator and the tables in docs/IMAGE-FORMAT.md (checked by a test) use them.
 */

import { STRUCTS } from '../abi.ts';
import { PAGE_SIZE } from '../units.ts';
import { crc32 } from './crc.ts';

export { PAGE_SIZE };
export const SECTOR_SIZE = 512;

/** Sector 0 of an empty swap device. */
export const SWAP_SIGNATURE = 'HLSWAP01';
/** Sector 0 of a device holding a resumable image (swsusp's "S1SUSPEND"). */
export const IMAGE_SIGNATURE = 'HLIMAGE1';
/** First bytes of the image header. */
export const IMAGE_MAGIC = 'HIBERLAB';
/** Bumped whenever a field below changes meaning or place. */
export const FORMAT_VERSION = 4;

/** Where the writer puts the header; the signature block records it. */
export const HEADER_OFFSET = PAGE_SIZE;
/** Where the writer puts the metadata: the page after the header. */
export const METADATA_OFFSET = 2 * PAGE_SIZE;

export const BUILD_ID_BYTES = 32;
export const STRATEGY_BYTES = 32;
/** Size of the guest's struct saved_context (src/abi.ts). */
export const CONTEXT_BYTES = STRUCTS.saved_context.size;

/**
 * The most frames a 32-bit guest can have (4 GiB / 4 KiB). frame_count and page_count
 * read from a file are refused above it, so nothing read from a file can make the
 * validator allocate more than 12 MiB of metadata.
 */
export const MAX_FRAMES = 1 << 20;

/**
 * Most extents an image's swap map can have (the header's extent table). An image whose
 * sectors are scattered over the device (a fragmented swap file) lists where its logical
 * sectors lie, in order, as Linux's swap map pages do; 0 extents: logically contiguous.
 */
export const MAX_EXTENTS = 256;
/** Bytes of one extent: u32 first physical sector, u32 sector count. */
export const EXTENT_BYTES = 8;

/** Bytes per page in the metadata: one u32 PFN and one u32 CRC. */
export const METADATA_BYTES_PER_PAGE = 8;
/** The same in a compressed image: the PFN, the CRC and the page's stored size (u32). */
export const METADATA_BYTES_PER_COMPRESSED_PAGE = 12;

/** What the header's compression field may say. */
export const COMPRESSION = {
  /** Every page stored whole: page i at data_offset + i * 4096. */
  NONE: 0,
  /**
   * Every page an LZ4 block (lz4's block format, as Linux's hibernation compresses since
   * 6.9), or the page itself where that is not smaller (stored size 4096); the stored
   * pages are packed back to back, page i where the sizes of the pages before it end.
   */
  LZ4: 1,
} as const;
export type Compression = (typeof COMPRESSION)[keyof typeof COMPRESSION];

/** Bytes per page in the metadata of an image with this compression. */
export function metadataBytesPerPage(compression: number): number {
  return compression === COMPRESSION.NONE ? METADATA_BYTES_PER_PAGE : METADATA_BYTES_PER_COMPRESSED_PAGE;
}

export type FieldType = 'u32' | 'u64' | 'bytes' | 'ascii';

export interface LayoutField {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType;
  readonly doc: string;
}

export interface Layout<N extends string> {
  readonly size: number;
  readonly fields: readonly LayoutField[];
  readonly at: Readonly<Record<N, LayoutField>>;
}

type FieldSpec = readonly [name: string, type: FieldType, doc: string, size?: number];

/** Lays fields out one after the other; u64 fields must land 8-aligned (checked). */
function layout<const S extends readonly FieldSpec[]>(spec: S): Layout<S[number][0]> {
  let offset = 0;
  const fields: LayoutField[] = [];
  const at: Record<string, LayoutField> = {};
  for (const [name, type, doc, explicitSize] of spec) {
    const size = explicitSize ?? (type === 'u64' ? 8 : 4);
    if (type === 'u64' && offset % 8 !== 0) throw new Error(`layout: u64 field ${name} at unaligned offset ${offset}`);
    const field: LayoutField = { name, offset, size, type, doc };
    fields.push(field);
    at[name] = field;
    offset += size;
  }
  return { size: offset, fields, at: at as Record<S[number][0], LayoutField> };
}

/** Sector 0. Bytes after the last field up to 512 are zero. */
export const SIGNATURE_LAYOUT = layout([
  ['signature', 'ascii', `"${SWAP_SIGNATURE}" (empty swap device) or "${IMAGE_SIGNATURE}" (resumable image)`, 8],
  ['page_size', 'u32', `${PAGE_SIZE}`],
  ['flags', 'u32', '0 (reserved)'],
  ['device_bytes', 'u64', 'size of the device when it was made a swap device'],
  ['header_offset', 'u64', `image only: byte offset of the image header (${HEADER_OFFSET}); 0 otherwise`],
  ['header_crc', 'u32', 'image only: the header_crc of that header; 0 otherwise'],
]);

/** The image header at HEADER_OFFSET. Bytes after the last field up to the page end are zero. */
export const HEADER_LAYOUT = layout([
  ['magic', 'ascii', `"${IMAGE_MAGIC}"`, 8],
  ['version', 'u32', `format version (${FORMAT_VERSION})`],
  ['header_size', 'u32', 'bytes covered by header_crc: the size of this table'],
  ['page_size', 'u32', `${PAGE_SIZE}`],
  ['frame_count', 'u32', `frames of the hibernated guest; every PFN is below it (at most ${MAX_FRAMES})`],
  ['page_count', 'u32', 'pages in the image (at most frame_count)'],
  ['context_address', 'u32', "guest physical address of the guest's struct saved_context"],
  ['build_id', 'bytes', 'sha256 of the guest ELF that wrote the image (raw bytes)', BUILD_ID_BYTES],
  ['ram_bytes', 'u64', 'RAM size of the hibernated guest'],
  ['metadata_offset', 'u64', `byte offset of the metadata (${METADATA_OFFSET}), page aligned`],
  ['metadata_bytes', 'u64', `page_count x ${METADATA_BYTES_PER_PAGE} (PFNs, then CRCs), compressed: page_count x ${METADATA_BYTES_PER_COMPRESSED_PAGE} (PFNs, CRCs, stored sizes); padding not included`],
  ['data_offset', 'u64', 'byte offset of the data: metadata end rounded up to a page'],
  ['data_bytes', 'u64', `page_count x ${PAGE_SIZE}; compressed: the sum of the stored sizes`],
  ['strategy', 'ascii', 'name of the save strategy, NUL padded', STRATEGY_BYTES],
  ['atomic_copy_pages', 'u32', 'stats: pages copied at the atomic point'],
  ['live_written_pages', 'u32', 'stats: pages written while the guest was running'],
  ['rewritten_pages', 'u32', 'stats: page writes that replaced an earlier write of the same page (counted by the writer)'],
  ['wp_faults', 'u32', 'stats: write-protect faults taken during the save'],
  ['precopy_rounds', 'u32', 'stats: pre-copy rounds before the atomic point'],
  ['frozen_tasks', 'u32', 'stats: tasks frozen at the atomic point'],
  ['compression', 'u32', `${COMPRESSION.NONE}: pages stored whole; ${COMPRESSION.LZ4}: each page an LZ4 block, packed (the suspend module's option)`],
  ['reserved', 'u32', 'zero'],
  ['context_size', 'u32', `bytes of saved_context (${CONTEXT_BYTES})`],
  ['saved_context', 'bytes', "the guest's struct saved_context at the atomic point (opaque here)", CONTEXT_BYTES],
  ['extent_count', 'u32', `extents in the swap map below (0: the image lies on the device as its offsets say; at most ${MAX_EXTENTS})`],
  ['extents', 'bytes', `the swap map: extent_count x (u32 first physical sector, u32 sectors), zero after; logical sector s of the image is in the extent whose sectors, counted in order from 0, include s. The first extent starts at sector 0 and covers the signature block and this header`, MAX_EXTENTS * EXTENT_BYTES],
  ['metadata_crc', 'u32', 'CRC32 of the metadata_bytes bytes of metadata'],
  ['header_crc', 'u32', 'CRC32 of the header_size bytes of this header with this field zero'],
]);

/** Size of the header: what header_crc covers. */
export const HEADER_SIZE = HEADER_LAYOUT.size;

/**
 * Counters a save strategy records in the image header (u32 each). Nothing reads them
 * back to make a decision: they are for `hiberlab inspect` and the reports.
 */
export interface ImageStats {
  /** Pages copied at the atomic point (interrupts off, tasks frozen). */
  readonly atomicCopyPages: number;
  /** Pages written to the image while the guest was running (wp-full, cow, pageset2). */
  readonly liveWrittenPages: number;
  /** Page writes that replaced an earlier write of the same page; counted by the writer. */
  readonly rewrittenPages: number;
  /** Write-protect faults taken during the save. */
  readonly wpFaults: number;
  /** Pre-copy rounds run before the atomic point. */
  readonly precopyRounds: number;
  /** Tasks frozen at the atomic point. */
  readonly frozenTasks: number;
}

/** Which header field holds which stat. */
export const STAT_FIELDS = [
  ['atomicCopyPages', 'atomic_copy_pages'],
  ['liveWrittenPages', 'live_written_pages'],
  ['rewrittenPages', 'rewritten_pages'],
  ['wpFaults', 'wp_faults'],
  ['precopyRounds', 'precopy_rounds'],
  ['frozenTasks', 'frozen_tasks'],
] as const satisfies ReadonlyArray<readonly [keyof ImageStats, keyof typeof HEADER_LAYOUT.at]>;

export const ZERO_STATS: ImageStats = {
  atomicCopyPages: 0, liveWrittenPages: 0, rewrittenPages: 0, wpFaults: 0, precopyRounds: 0, frozenTasks: 0,
};

/** The guest's saved CPU context, as the hibernated kernel left it at the atomic point. */
export interface SavedContext {
  /** Guest physical address of struct saved_context. */
  readonly address: number;
  /** Its CONTEXT_BYTES bytes. */
  readonly bytes: Uint8Array;
}

/** Everything the image header says, decoded (not checked: see validate.ts). */
export interface ImageHeader {
  readonly magic: string;
  readonly version: number;
  readonly headerSize: number;
  readonly pageSize: number;
  readonly frameCount: number;
  readonly pageCount: number;
  /** sha256 of the guest ELF, lower-case hex. */
  readonly buildId: string;
  readonly ramBytes: number;
  readonly metadataOffset: number;
  readonly metadataBytes: number;
  readonly dataOffset: number;
  readonly dataBytes: number;
  /** COMPRESSION.NONE or .LZ4 as the header says it (the validation bounds it). */
  readonly compression: number;
  readonly strategy: string;
  readonly stats: ImageStats;
  readonly context: SavedContext;
  readonly contextSize: number;
  readonly metadataCrc: number;
  readonly headerCrc: number;
  /** extent_count as the header says it (the validation bounds it). */
  readonly extentCount: number;
  /** The swap map: [first physical sector, sectors] pairs in logical order; empty: contiguous. */
  readonly extents: Uint32Array;
}

/** Where the regions of an image of pageCount pages go. */
export interface ImageExtent {
  readonly metadataOffset: number;
  readonly metadataBytes: number;
  readonly dataOffset: number;
  readonly dataBytes: number;
  /** Bytes from the start of the device to the end of the data. */
  readonly imageBytes: number;
}

/** The regions the writer uses for an image of pageCount pages. */
export function imageExtent(pageCount: number): ImageExtent {
  const metadataBytes = pageCount * METADATA_BYTES_PER_PAGE;
  const dataOffset = METADATA_OFFSET + roundUpToPage(metadataBytes);
  const dataBytes = pageCount * PAGE_SIZE;
  return { metadataOffset: METADATA_OFFSET, metadataBytes, dataOffset, dataBytes, imageBytes: dataOffset + dataBytes };
}

/** How many pages an image on a device of deviceBytes can hold (never more than MAX_FRAMES). */
export function maxPagesFor(deviceBytes: number): number {
  if (deviceBytes < METADATA_OFFSET) return 0;
  // Each page costs PAGE_SIZE + 8 bytes, plus under a page of metadata padding: start
  // from a guess that is never too high and step up while the next count still fits.
  let pages = Math.max(0, Math.floor((deviceBytes - METADATA_OFFSET - PAGE_SIZE) / (PAGE_SIZE + METADATA_BYTES_PER_PAGE)));
  while (pages < MAX_FRAMES && imageExtent(pages + 1).imageBytes <= deviceBytes) pages++;
  return Math.min(pages, MAX_FRAMES);
}

export function roundUpToPage(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

// ---------------------------------------------------------------------------
// Signature block codec

export type SignatureKind = 'swap' | 'image' | 'unknown';

export interface Signature {
  readonly kind: SignatureKind;
  /** Image only: where the header is. */
  readonly headerOffset?: number;
  /** Image only: the CRC the header must have. */
  readonly headerCrc?: number;
  /** Swap and image: the device size recorded when it was made a swap device. */
  readonly deviceBytes?: number;
  /** The first 8 bytes of sector 0 as hex (for messages about unknown signatures). */
  readonly rawHex: string;
}

/** Sector 0 of a swap device of deviceBytes. */
export function encodeSwapSignature(deviceBytes: number): Uint8Array {
  return encodeSignature(SWAP_SIGNATURE, deviceBytes, 0, 0);
}

/** Sector 0 of a device that holds a resumable image whose header is at headerOffset. */
export function encodeImageSignature(deviceBytes: number, headerOffset: number, headerCrc: number): Uint8Array {
  return encodeSignature(IMAGE_SIGNATURE, deviceBytes, headerOffset, headerCrc);
}

/** Decodes sector 0 (a shorter buffer, from a file under 512 bytes, is 'unknown'). */
export function decodeSignature(sector: Uint8Array): Signature {
  const rawHex = toHex(sector.subarray(0, 8));
  if (sector.length < SECTOR_SIZE) return { kind: 'unknown', rawHex };
  const f = SIGNATURE_LAYOUT.at;
  const view = viewOf(sector);
  const sig = readAscii(sector, f.signature);
  const deviceBytes = readU64(view, f.device_bytes.offset);
  if (sig === SWAP_SIGNATURE) return { kind: 'swap', deviceBytes, rawHex };
  if (sig === IMAGE_SIGNATURE) {
    return {
      kind: 'image',
      headerOffset: readU64(view, f.header_offset.offset),
      headerCrc: view.getUint32(f.header_crc.offset, true),
      deviceBytes,
      rawHex,
    };
  }
  return { kind: 'unknown', rawHex };
}

function encodeSignature(signature: string, deviceBytes: number, headerOffset: number, headerCrc: number): Uint8Array {
  const sector = new Uint8Array(SECTOR_SIZE);
  const view = viewOf(sector);
  const f = SIGNATURE_LAYOUT.at;
  writeAscii(sector, f.signature, signature);
  view.setUint32(f.page_size.offset, PAGE_SIZE, true);
  writeU64(view, f.device_bytes.offset, deviceBytes);
  writeU64(view, f.header_offset.offset, headerOffset);
  view.setUint32(f.header_crc.offset, headerCrc >>> 0, true);
  return sector;
}

// ---------------------------------------------------------------------------
// Header codec

/** What the writer puts in a header; the CRC fields are computed by encodeHeader. */
export interface HeaderFields {
  readonly frameCount: number;
  readonly pageCount: number;
  readonly buildId: Uint8Array;
  readonly ramBytes: number;
  readonly extent: ImageExtent;
  readonly strategy: string;
  readonly stats: ImageStats;
  readonly context: SavedContext;
  readonly metadataCrc: number;
  /** The swap map ([first sector, sectors] pairs); default none: contiguous. */
  readonly extents?: Uint32Array;
}

/** The header page (PAGE_SIZE bytes, zero after the header) and its CRC. */
export function encodeHeader(h: HeaderFields): { page: Uint8Array; headerCrc: number } {
  const page = new Uint8Array(PAGE_SIZE);
  const view = viewOf(page);
  const f = HEADER_LAYOUT.at;
  writeAscii(page, f.magic, IMAGE_MAGIC);
  view.setUint32(f.version.offset, FORMAT_VERSION, true);
  view.setUint32(f.header_size.offset, HEADER_SIZE, true);
  view.setUint32(f.page_size.offset, PAGE_SIZE, true);
  view.setUint32(f.frame_count.offset, h.frameCount, true);
  view.setUint32(f.page_count.offset, h.pageCount, true);
  view.setUint32(f.context_address.offset, h.context.address, true);
  page.set(h.buildId, f.build_id.offset);
  writeU64(view, f.ram_bytes.offset, h.ramBytes);
  writeU64(view, f.metadata_offset.offset, h.extent.metadataOffset);
  writeU64(view, f.metadata_bytes.offset, h.extent.metadataBytes);
  writeU64(view, f.data_offset.offset, h.extent.dataOffset);
  writeU64(view, f.data_bytes.offset, h.extent.dataBytes);
  writeAscii(page, f.strategy, h.strategy);
  for (const [key, field] of STAT_FIELDS) view.setUint32(f[field].offset, h.stats[key], true);
  view.setUint32(f.context_size.offset, CONTEXT_BYTES, true);
  page.set(h.context.bytes, f.saved_context.offset);
  const extents = h.extents ?? new Uint32Array(0);
  if (extents.length % 2 !== 0 || extents.length / 2 > MAX_EXTENTS) throw new RangeError(`a swap map of ${extents.length / 2} extents (at most ${MAX_EXTENTS})`);
  view.setUint32(f.extent_count.offset, extents.length / 2, true);
  for (let i = 0; i < extents.length; i++) view.setUint32(f.extents.offset + i * 4, extents[i]!, true);
  view.setUint32(f.metadata_crc.offset, h.metadataCrc >>> 0, true);
  const headerCrc = crc32(page.subarray(0, HEADER_SIZE));
  view.setUint32(f.header_crc.offset, headerCrc, true);
  return { page, headerCrc };
}

/** Decodes the header fields from at least HEADER_SIZE bytes, without checking them. */
export function decodeHeader(bytes: Uint8Array): ImageHeader {
  const view = viewOf(bytes);
  const f = HEADER_LAYOUT.at;
  const u32 = (field: LayoutField): number => view.getUint32(field.offset, true);
  const u64 = (field: LayoutField): number => readU64(view, field.offset);
  const stats: Record<string, number> = {};
  for (const [key, field] of STAT_FIELDS) stats[key] = u32(f[field]);
  return {
    magic: readAscii(bytes, f.magic),
    version: u32(f.version),
    headerSize: u32(f.header_size),
    pageSize: u32(f.page_size),
    frameCount: u32(f.frame_count),
    pageCount: u32(f.page_count),
    buildId: toHex(fieldBytes(bytes, f.build_id)),
    ramBytes: u64(f.ram_bytes),
    metadataOffset: u64(f.metadata_offset),
    metadataBytes: u64(f.metadata_bytes),
    dataOffset: u64(f.data_offset),
    dataBytes: u64(f.data_bytes),
    compression: u32(f.compression),
    strategy: readAscii(bytes, f.strategy),
    stats: stats as unknown as ImageStats,
    context: { address: u32(f.context_address), bytes: fieldBytes(bytes, f.saved_context).slice() },
    contextSize: u32(f.context_size),
    metadataCrc: u32(f.metadata_crc),
    headerCrc: u32(f.header_crc),
    extentCount: u32(f.extent_count),
    extents: decodeExtents(view, Math.min(u32(f.extent_count), MAX_EXTENTS)),
  };
}

function decodeExtents(view: DataView, count: number): Uint32Array {
  const out = new Uint32Array(2 * count);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(HEADER_LAYOUT.at.extents.offset + i * 4, true);
  return out;
}

/** CRC32 of the first HEADER_SIZE bytes with the header_crc field taken as zero. */
export function headerCrcOf(bytes: Uint8Array): number {
  const at = HEADER_LAYOUT.at.header_crc.offset;
  // header_crc is the last field: CRC the bytes before it, then four zero bytes.
  return crc32(ZERO_U32, crc32(bytes.subarray(0, at)));
}

const ZERO_U32 = new Uint8Array(4);

// ---------------------------------------------------------------------------
// Metadata codec: page_count u32 PFNs, then page_count u32 CRCs.

/** The host stores u32 little-endian (x86, arm): metadata is then copied, not converted. */
const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

export function encodeMetadata(pfns: Uint32Array, crcs: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(roundUpToPage(pfns.length * METADATA_BYTES_PER_PAGE));
  const n = pfns.length;
  if (LITTLE_ENDIAN_HOST) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    words.set(pfns, 0);
    words.set(crcs.subarray(0, n), n);
    return bytes;
  }
  const view = viewOf(bytes);
  for (let i = 0; i < n; i++) {
    view.setUint32(i * 4, pfns[i]!, true);
    view.setUint32((n + i) * 4, crcs[i]!, true);
  }
  return bytes;
}

/** PFNs and CRCs; with `compressed`, the stored sizes after them (a compressed image). */
export function decodeMetadata(bytes: Uint8Array, pageCount: number, compressed = false): { pfns: Uint32Array; crcs: Uint32Array; sizes?: Uint32Array } {
  const arrays = compressed ? 3 : 2;
  const words = new Uint32Array(arrays * pageCount);
  if (LITTLE_ENDIAN_HOST) words.set(new Uint32Array(bytes.slice(0, arrays * pageCount * 4).buffer));
  else {
    const view = viewOf(bytes);
    for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, true);
  }
  const pfns = words.subarray(0, pageCount);
  const crcs = words.subarray(pageCount, 2 * pageCount);
  return compressed ? { pfns, crcs, sizes: words.subarray(2 * pageCount) } : { pfns, crcs };
}

// ---------------------------------------------------------------------------
// Helpers

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fieldBytes(bytes: Uint8Array, field: LayoutField): Uint8Array {
  return bytes.subarray(field.offset, field.offset + field.size);
}

/** u64 as a number: exact below 2^53, and anything above is far beyond every limit anyway. */
function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true) * 2 ** 32 + view.getUint32(offset, true);
}

function writeU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

/** The field's bytes up to the first NUL, as latin1 (so any byte shows as one character). */
function readAscii(bytes: Uint8Array, field: LayoutField): string {
  const raw = fieldBytes(bytes, field);
  const end = raw.indexOf(0);
  return Buffer.from(raw.buffer, raw.byteOffset, end === -1 ? raw.length : end).toString('latin1');
}

function writeAscii(bytes: Uint8Array, field: LayoutField, text: string): void {
  const encoded = Buffer.from(text, 'latin1');
  if (encoded.length > field.size) throw new RangeError(`${field.name} "${text}" is longer than ${field.size} bytes`);
  bytes.set(encoded, field.offset);
}

// ---------------------------------------------------------------------------
// The same tables for C: guest/image_format.h (written by `npm run build:guest`, kept in
// step by a test), for code in the guest that writes images itself (the suspend module).

/** guest/image_format.h: the format's constants and every field's offset and size. */
export function renderImageFormatHeader(): string {
  const out = [
    '/* Generated from src/image/layout.ts by `npm run build:guest`: do not edit. */',
    '/* The hibernation image format (docs/IMAGE-FORMAT.md), for guest code that writes images. */',
    '#ifndef HIBERLAB_IMAGE_FORMAT_H',
    '#define HIBERLAB_IMAGE_FORMAT_H',
    '',
    `#define IMG_FORMAT_VERSION ${FORMAT_VERSION}`,
    `#define IMG_SECTOR_SIZE ${SECTOR_SIZE}`,
    `#define IMG_PAGE_SIZE ${PAGE_SIZE}`,
    `#define IMG_HEADER_OFFSET ${HEADER_OFFSET}`,
    `#define IMG_METADATA_OFFSET ${METADATA_OFFSET}`,
    `#define IMG_METADATA_BYTES_PER_PAGE ${METADATA_BYTES_PER_PAGE}`,
    `#define IMG_METADATA_BYTES_PER_COMPRESSED_PAGE ${METADATA_BYTES_PER_COMPRESSED_PAGE}`,
    `#define IMG_COMPRESSION_NONE ${COMPRESSION.NONE}`,
    `#define IMG_COMPRESSION_LZ4 ${COMPRESSION.LZ4}`,
    `#define IMG_MAX_EXTENTS ${MAX_EXTENTS}`,
    `#define IMG_EXTENT_BYTES ${EXTENT_BYTES}`,
    `#define IMG_MAX_FRAMES ${MAX_FRAMES}`,
    `#define IMG_SWAP_SIGNATURE "${SWAP_SIGNATURE}"`,
    `#define IMG_IMAGE_SIGNATURE "${IMAGE_SIGNATURE}"`,
    `#define IMG_MAGIC "${IMAGE_MAGIC}"`,
  ];
  const table = (title: string, prefix: string, l: Layout<string>) => {
    out.push('', `/* ${title} */`);
    for (const f of l.fields) {
      const name = `${prefix}_${f.name.toUpperCase()}`;
      out.push(`#define ${name} ${f.offset} /* ${f.type}, ${f.size} bytes: ${f.doc.replace(/\*\//g, '* /')} */`, `#define ${name}_SIZE ${f.size}`);
    }
    out.push(`#define ${prefix}_BYTES ${l.size}`);
  };
  table('The signature block, sector 0.', 'IMG_SIG', SIGNATURE_LAYOUT);
  table(`The image header at IMG_HEADER_OFFSET; header_crc covers IMG_HDR_BYTES bytes with header_crc zero.`, 'IMG_HDR', HEADER_LAYOUT);
  out.push('', '#endif /* HIBERLAB_IMAGE_FORMAT_H */', '');
  return out.join('\n');
}
