/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG) for the image format.
 *
 * Node's zlib.crc32 is the portable table-driven code (about 2 GB/s here): two passes
 * over every page (once when writing, once when validating) cost more than writing
 * the file. @node-rs/crc32 computes the same checksum with the CPU's carry-less
 * multiply (PCLMULQDQ), 3–4× as fast; where its prebuilt binary is missing the
 * portable one is used. Both give identical values (checked by a test), so an image
 * written with one validates with the other.
 */
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

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
