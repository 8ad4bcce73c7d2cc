// The page scan of an image's validation (step 8 of validate.ts), shared by the main
// thread and the CRC thread (crc-thread.ts). Plain JavaScript, so that a worker thread can
// run it whatever loader the main thread uses (tsx, vitest); types in page-scan.d.mts.
//
// The image's data is cut into chunks of chunkPages pages. Whoever scans takes the next
// chunk number from `counter` (Atomics.add: with a counter in a SharedArrayBuffer two
// threads share the work, each taking chunks until none is left, so a thread the host
// slows down simply takes fewer), reads that chunk from `fd` into `buffer` (threads of one
// process share their file descriptors, and a positioned read needs no lock) and compares
// each page's CRC32 with crcs[page]. The CRCs of a chunk come from one call
// (`crcPages(chunk, out, index)`: crc.ts's crc32Pages on the main thread, the native
// module's crc32Pages or a loop over crc32 on the CRC thread).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import zlib from 'node:zlib';

const PAGE_SIZE = 4096;

/**
 * @returns {{ chunks: number, badPages: number, first?: { index: number, expected: number, actual: number }, short?: number }}
 *   chunks scanned, bad pages found and the lowest-numbered one; `short` is the file
 *   offset where the file ended inside a chunk (the scan stops there).
 */
export function scanChunks(job, crcPages, buffer) {
  const { fd, dataOffset, pageCount, chunkPages, crcs, counter, sizes, offsets } = job;
  const chunks = Math.ceil(pageCount / chunkPages);
  // A compressed image: each chunk's stored pages are read into `packed`, then expanded into `buffer`.
  const packed = sizes ? new Uint8Array(buffer.length) : undefined;
  let done = 0;
  let badPages = 0;
  let first;
  for (;;) {
    const c = Atomics.add(counter, 0, 1);
    if (c >= chunks) break;
    const index = c * chunkPages;
    const count = Math.min(chunkPages, pageCount - index);
    const chunk = buffer.subarray(0, count * PAGE_SIZE);
    const offset = dataOffset + (offsets ? offsets[index] : index * PAGE_SIZE);
    const stored = packed ? packed.subarray(0, offsets[index + count] - offsets[index]) : chunk;
    const got = readMapped(fd, stored, offset, job.extents);
    if (got < stored.length) {
      Atomics.store(counter, 0, chunks); // the other thread stops too
      return { chunks: done, badPages, short: offset + got };
    }
    const broken = packed ? expandPages(stored, sizes, index, count, chunk) : undefined;
    const scan = comparePageCrcs(chunk, crcs, index, crcPages, broken);
    badPages += scan.badPages;
    if (scan.first && (first === undefined || scan.first.index < first.index)) first = scan.first;
    done++;
  }
  return first ? { chunks: done, badPages, first } : { chunks: done, badPages };
}

/**
 * Decodes one LZ4 block (lz4's block format: sequences of a token, literals, a 2-byte
 * offset and a match) from `src` into `dst`, which it must fill exactly. Returns false
 * for a block that is malformed: reading past its end, a match before the start of the
 * output or of offset 0, or more or fewer bytes than `dst` holds. Never reads or writes
 * outside `src` and `dst`.
 */
export function lz4DecodeBlock(src, dst) {
  let ip = 0;
  let op = 0;
  const inEnd = src.length;
  const outEnd = dst.length;
  while (ip < inEnd) {
    const token = src[ip++];
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (ip >= inEnd) return false;
        const b = src[ip++];
        literals += b;
        if (b !== 255) break;
      }
    }
    if (ip + literals > inEnd || op + literals > outEnd) return false;
    dst.set(src.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip === inEnd) break; // the last sequence has literals only
    if (ip + 2 > inEnd) return false;
    const distance = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (distance === 0 || distance > op) return false;
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      for (;;) {
        if (ip >= inEnd) return false;
        const b = src[ip++];
        length += b;
        if (b !== 255) break;
      }
    }
    if (op + length > outEnd) return false;
    // Byte by byte: a match may overlap the bytes it produces (distance < length).
    for (let from = op - distance, end = op + length; op < end; ) dst[op++] = dst[from++];
  }
  return op === outEnd;
}

/**
 * Expands `count` stored pages of a compressed image (pages firstIndex..., stored sizes
 * in `sizes`, packed in `stored`) into `out`, count * 4096 bytes. Returns one byte per
 * page: 1 where the stored page would not decompress (its page in `out` is then zero).
 */
export function expandPages(stored, sizes, firstIndex, count, out) {
  const broken = new Uint8Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const size = sizes[firstIndex + i];
    const page = out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    const from = stored.subarray(at, at + size);
    at += size;
    if (size === PAGE_SIZE) page.set(from);
    else if (!lz4DecodeBlock(from, page)) {
      page.fill(0);
      broken[i] = 1;
    }
  }
  return broken;
}

const SECTOR = 512;

/**
 * The pieces of the logical byte range [offset, offset + length) of an image whose swap
 * map is `extents` ([first physical sector, sectors] pairs in logical order; empty or
 * absent: the range lies where it says): [physical offset, offset into the range, bytes]
 * each, in order. A part beyond the map is left out.
 * @returns {Array<[number, number, number]>}
 */
export function mappedPieces(extents, offset, length) {
  if (!extents || extents.length === 0) return [[offset, 0, length]];
  const pieces = [];
  let logical = 0; // byte where the current extent begins, logically
  for (let e = 0; e < extents.length && logical < offset + length; e += 2) {
    const bytes = extents[e + 1] * SECTOR;
    const from = Math.max(offset, logical);
    const to = Math.min(offset + length, logical + bytes);
    if (from < to) pieces.push([extents[e] * SECTOR + (from - logical), from - offset, to - from]);
    logical += bytes;
  }
  return pieces;
}

/**
 * Reads `buffer.length` bytes of the logical range at `offset` through the swap map
 * (positioned reads: threads may share the descriptor); returns how many bytes were
 * read before the first short read, or before the first part the map does not cover.
 */
export function readMapped(fd, buffer, offset, extents) {
  let done = 0;
  for (const [physical, at, bytes] of mappedPieces(extents, offset, buffer.length)) {
    if (at !== done) return done;
    for (let got = 0; got < bytes; ) {
      const n = fs.readSync(fd, buffer, at + got, bytes - got, physical + got);
      if (n === 0) return at + got;
      got += n;
    }
    done = at + bytes;
  }
  return done;
}

/**
 * The CRC32 of each page of `chunk` (pages firstIndex, firstIndex + 1, ...) against
 * crcs[page]: how many differ, and the first of them. A page marked in `broken` (a stored
 * page that would not decompress) counts as bad whatever its CRC.
 * @returns {{ badPages: number, first?: { index: number, expected: number, actual: number } }}
 */
export function comparePageCrcs(chunk, crcs, firstIndex, crcPages, broken) {
  let badPages = 0;
  let first;
  const count = chunk.length / PAGE_SIZE;
  const actuals = new Uint32Array(count);
  crcPages(chunk, actuals, 0);
  for (let i = 0; i < count; i++) {
    const actual = actuals[i];
    const expected = crcs[firstIndex + i];
    if (actual !== expected || (broken !== undefined && broken[i] === 1)) {
      badPages++;
      first ??= { index: firstIndex + i, expected, actual };
    }
  }
  return first ? { badPages, first } : { badPages };
}

/**
 * The CRC thread's page CRCs, the same choice as the main thread's crc.ts: the native
 * module's crc32Pages when `nativePath` is given, else a loop over crc32 ('pclmul':
 * @node-rs/crc32, 'zlib': node:zlib). All give the same values. (Plain JavaScript: this
 * thread cannot import crc.ts.)
 */
function crcPagesFunction(impl, nativePath) {
  if (nativePath) return createRequire(import.meta.url)(nativePath).crc32Pages;
  let crc32 = (data) => zlib.crc32(data, 0) >>> 0;
  if (impl === 'pclmul') {
    const fast = createRequire(import.meta.url)('@node-rs/crc32').crc32;
    crc32 = (data) => fast(data, 0) >>> 0;
  }
  return (data, out, index) => {
    for (let i = 0; i < data.length / PAGE_SIZE; i++) out[index + i] = crc32(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  };
}

// Started by crc-thread.ts as the CRC thread: one job per message, one reply each.
if (!isMainThread && workerData?.role === 'hiberlab-crc-thread') {
  const crcPages = crcPagesFunction(workerData.impl, workerData.nativePath);
  let buffer = new Uint8Array(0);
  parentPort.on('message', (job) => {
    try {
      const counter = new Int32Array(job.counter);
      // A counter with a second slot says whether this thread began the job (1) or the
      // main thread, done with every chunk before this thread got to it, closed it (2):
      // then the main thread is not waiting for us, and the file may already be closed.
      if (counter.length > 1 && Atomics.compareExchange(counter, 1, 0, 1) !== 0) {
        parentPort.postMessage({ chunks: 0, badPages: 0 });
        return;
      }
      if (buffer.length < job.chunkPages * PAGE_SIZE) buffer = new Uint8Array(job.chunkPages * PAGE_SIZE);
      parentPort.postMessage(scanChunks({ ...job, counter }, crcPages, buffer));
    } catch (err) {
      parentPort.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  });
  warmUp(crcPages);
  parentPort.postMessage({ ready: true });
}

/**
 * A new thread runs its code cold (V8's interpreter): on its first scan it takes far fewer
 * chunks than the main thread. So it scans 32 MiB of /dev/zero first, while the boot
 * kernel boots, and V8 compiles the loop before the image needs it.
 */
function warmUp(crcPages) {
  let fd;
  try {
    fd = fs.openSync('/dev/zero', 'r');
  } catch {
    return;
  }
  try {
    const chunkPages = 256;
    const pageCount = 8192;
    const buffer = new Uint8Array(chunkPages * PAGE_SIZE);
    scanChunks({ fd, dataOffset: 0, pageCount, chunkPages, crcs: new Uint32Array(pageCount), counter: new Int32Array(1) }, crcPages, buffer);
  } finally {
    fs.closeSync(fd);
  }
}
