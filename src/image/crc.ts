/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG) for the image format.
 *
 * Node's zlib.crc32 is the portable table-driven code: two passes over every page
 * (once when writing, once when validating) cost more than writing the file.
 * @node-rs/crc32 computes the same checksum with the CPU's carry-less multiply
 * (PCLMULQDQ), much faster; where its prebuilt binary is missing the
 * portable one is used. Both give identical values (checked by a test), so an image
 * written with one validates with the other.
 */
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { hiberlabNative } from '../native.ts';
import { PAGE_SIZE } from '../units.ts';

type Crc32 = (data: Uint8Array, initial?: number) => number;

function loadFast(): Crc32 | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@node-rs/crc32') as { crc32: (input: Uint8Array, initialState?: number) => number };
    const fast: Crc32 = (data, initial = 0) => mod.crc32(data, initial) >>> 0;
    // Refuse a binding that disagrees with zlib on a known value.
    const probe = Uint8Array.from([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]);
    return fast(probe) === 0xcbf43926 && fast(probe, 0x12345678) === zlib.crc32(probe, 0x12345678) ? fast : undefined;
  } catch {
    return undefined;
  }
}

const fast = loadFast();

/** Which implementation crc32() uses: 'pclmul' (@node-rs/crc32) or 'zlib'. */
export const CRC32_IMPLEMENTATION: 'pclmul' | 'zlib' = fast ? 'pclmul' : 'zlib';

/** CRC-32 of `data`, continuing from `initial` (default 0), as an unsigned 32-bit number. */
export const crc32: Crc32 = fast ?? ((data, initial = 0) => zlib.crc32(data, initial) >>> 0);

/** The portable implementation, for tests that compare the two. */
export const crc32Portable: Crc32 = (data, initial = 0) => zlib.crc32(data, initial) >>> 0;


function loadPages(): ((data: Uint8Array, out: Uint32Array, index: number) => void) | undefined {
  const native = hiberlabNative();
  if (native instanceof Error || !native.crc32Accelerated()) return undefined;
  // Refuse a build that disagrees with crc32() on a known page.
  const probe = new Uint8Array(2 * PAGE_SIZE);
  for (let i = 0; i < probe.length; i++) probe[i] = (i * 131 + (i >> 7)) & 0xff;
  const got = new Uint32Array(3);
  native.crc32Pages(probe, got, 1);
  const ok = got[0] === 0 && got[1] === crc32(probe.subarray(0, PAGE_SIZE)) && got[2] === crc32(probe.subarray(PAGE_SIZE));
  return ok ? native.crc32Pages : undefined;
}

const nativePages = loadPages();

/** Which implementation crc32Pages() uses: 'native' (one call per run, src/native.ts) or 'per-page' (crc32() on each page). */
export const CRC32_PAGES_IMPLEMENTATION: 'native' | 'per-page' = nativePages ? 'native' : 'per-page';

/**
 * out[index + i] = crc32 of page i of `data` (whole 4096-byte pages): the image's page
 * CRCs, in one native call for the whole run where hiberlab's native module is built
 * and the CPU has carry-less multiply (a call and a subarray per page cost about as
 * much as the CRC itself), page by page with crc32() otherwise. Same values either way.
 */
export function crc32Pages(data: Uint8Array, out: Uint32Array, index: number): void {
  if (data.length % PAGE_SIZE !== 0) throw new RangeError(`crc32Pages: ${data.length} bytes is not a whole number of ${PAGE_SIZE}-byte pages`);
  const pages = data.length / PAGE_SIZE;
  if (!Number.isInteger(index) || index < 0 || index + pages > out.length) throw new RangeError(`crc32Pages: ${pages} CRCs from index ${index} do not fit in ${out.length}`);
  if (nativePages) {
    nativePages(data, out, index);
    return;
  }
  crc32PagesPortable(data, out, index);
}

/** crc32Pages page by page with crc32(), for tests that compare the two. */
export function crc32PagesPortable(data: Uint8Array, out: Uint32Array, index: number): void {
  for (let i = 0; i < data.length / PAGE_SIZE; i++) out[index + i] = crc32(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
}
