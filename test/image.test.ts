import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { STRUCTS } from '../src/abi.ts';
import {
  CONTEXT_BYTES, FORMAT_VERSION, HEADER_LAYOUT, HEADER_OFFSET, HEADER_SIZE, ImageError, ImageReader, ImageWriter, MIN_DEVICE_BYTES, PAGE_SIZE,
  SIGNATURE_LAYOUT, SwapDevice, formatInspection, imageExtent, inspectImage, resetSignature, validateImage,
  CrcThread, validateImageAsync, beginImageValidation,
  type ImageErrorCode, type ImageWriterOptions, type SavedContext,
} from '../src/image/index.ts';
import { wordsOfFrames } from '../src/pages/page-set.ts';
import { forge } from './helpers.ts';

// ---------------------------------------------------------------------------
// Fixtures

const BUILD = crypto.createHash('sha256').update('guest.elf').digest('hex');
const OTHER_BUILD = crypto.createHash('sha256').update('another guest.elf').digest('hex');
const RAM = 16 << 20;
const FRAMES = RAM / PAGE_SIZE;
const EXPECT = { buildId: BUILD, ramBytes: RAM };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiberlab-image-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** mulberry32: a small seeded PRNG, so every failure is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomBytes(next: () => number, bytes: number): Uint8Array {
  const words = new Uint32Array(bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(next() * 2 ** 32);
  return new Uint8Array(words.buffer);
}

/** count distinct PFNs below frames, ascending. */
function randomPfns(next: () => number, count: number, frames = FRAMES): Uint32Array {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(next() * frames));
  return Uint32Array.from([...chosen].sort((a, b) => a - b));
}

function context(): SavedContext {
  const bytes = new Uint8Array(CONTEXT_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i;
  return { address: 0x00105000, bytes };
}

function writerOptions(pfns: Uint32Array, extra: Partial<ImageWriterOptions> = {}): ImageWriterOptions {
  return { pfns, buildId: BUILD, ramBytes: RAM, frameCount: FRAMES, strategy: 'swsusp', context: context(), stats: { atomicCopyPages: pfns.length, frozenTasks: 3 }, ...extra };
}

interface Written {
  readonly file: string;
  readonly pfns: Uint32Array;
  readonly data: Uint8Array;
}

/** A committed image of `count` random pages on a new device of `deviceBytes`. */
async function writeImage(name: string, count: number, seed = 1, deviceBytes = 4 << 20): Promise<Written> {
  const next = rng(seed);
  const pfns = randomPfns(next, count);
  const data = randomBytes(next, count * PAGE_SIZE);
  const file = path.join(dir, name);
  const dev = SwapDevice.create(file, deviceBytes);
  try {
    const writer = new ImageWriter(dev, writerOptions(pfns));
    writer.write(0, data);
    await writer.commit();
  } finally {
    dev.close();
  }
  return { file, pfns, data };
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function patch(file: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, offset);
  fs.closeSync(fd);
}

function readRange(file: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, out, 0, length, offset);
  fs.closeSync(fd);
  return out;
}

/** Page `page` of `data` with byte `at` flipped, as flipByte leaves it in the file. */
function flipped(data: Uint8Array, page: number, at: number): Uint8Array {
  const copy = data.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

function flipByte(file: string, offset: number): void {
  const [byte] = readRange(file, offset, 1);
  patch(file, offset, Uint8Array.of(byte! ^ 0xff));
}

/** Runs fn, expecting an ImageError with `code`; returns it. */
function expectImageError(fn: () => unknown, code: ImageErrorCode): ImageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    const e = err as ImageError;
    expect(e.code, e.message).toBe(code);
    return e;
  }
  throw new Error(`expected ImageError ${code}, nothing was thrown`);
}

/** Awaits fn's promise, expecting an ImageError with `code`; returns it. */
async function expectImageErrorAsync(fn: () => Promise<unknown>, code: ImageErrorCode): Promise<ImageError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    const e = err as ImageError;
    expect(e.code, e.message).toBe(code);
    return e;
  }
  throw new Error(`expected ImageError ${code}, nothing was thrown`);
}

/** Validation refuses with `code` and leaves the file's bytes as they were. */
function expectRefusal(file: string, code: ImageErrorCode, expectation = EXPECT): ImageError {
  const before = sha256(file);
  const err = expectImageError(() => validateImage(file, expectation), code);
  expect(err.path).toBe(file);
  expect(sha256(file)).toBe(before);
  return err;
}

// ---------------------------------------------------------------------------

describe('round trip', () => {
  it('reads back exactly the pages written, at their PFNs, with the header as given', async () => {
    const { file, pfns, data } = await writeImage('swap.img', 300, 7);
    const image = validateImage(file, EXPECT);
    expect(Array.from(image.pfns)).toEqual(Array.from(pfns));
    expect(Array.from(image.pfnWords)).toEqual(Array.from(wordsOfFrames(pfns, FRAMES)));
    expect(image.header).toMatchObject({
      version: FORMAT_VERSION, buildId: BUILD, ramBytes: RAM, frameCount: FRAMES, pageCount: 300, strategy: 'swsusp',
      stats: { atomicCopyPages: 300, liveWrittenPages: 0, rewrittenPages: 0, wpFaults: 0, precopyRounds: 0, frozenTasks: 3 },
    });
    expect(image.header.context.address).toBe(0x00105000);
    expect(Array.from(image.header.context.bytes)).toEqual(Array.from(context().bytes));
    expect(image.dataOffset).toBe(imageExtent(300).dataOffset);
    const reader = new ImageReader(image);
    try {
      expect(Buffer.from(reader.readPages(0, 300)).equals(Buffer.from(data))).toBe(true);
      const middle = reader.readPages(100, 5, new Uint8Array(10 * PAGE_SIZE));
      expect(middle.length).toBe(5 * PAGE_SIZE);
      expect(Buffer.from(middle).equals(Buffer.from(data.subarray(100 * PAGE_SIZE, 105 * PAGE_SIZE)))).toBe(true);
    } finally {
      reader.close();
    }
  });

  it('chunks() streams every page in order with its PFN', async () => {
    const { file, pfns, data } = await writeImage('swap.img', 37, 3);
    const reader = new ImageReader(validateImage(file, EXPECT));
    const seen: number[] = [];
    for (const chunk of reader.chunks(4 * PAGE_SIZE)) {
      expect(chunk.data.length).toBe(chunk.pfns.length * PAGE_SIZE);
      const expected = data.subarray(chunk.firstIndex * PAGE_SIZE, chunk.firstIndex * PAGE_SIZE + chunk.data.length);
      expect(Buffer.from(chunk.data).equals(Buffer.from(expected))).toBe(true);
      seen.push(...chunk.pfns);
    }
    reader.close();
    expect(seen).toEqual(Array.from(pfns));
  });

  it('keeps the last write of a rewritten page and counts the rewrites', async () => {
    const next = rng(11);
    const pfns = randomPfns(next, 20);
    const first = randomBytes(next, 20 * PAGE_SIZE);
    const second = randomBytes(next, PAGE_SIZE);
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const writer = new ImageWriter(dev, writerOptions(pfns, { stats: { liveWrittenPages: 20 } }));
    writer.write(0, first);
    writer.write(5, second);
    writer.write(6, second);
    writer.write(5, first.subarray(0, PAGE_SIZE));
    const result = await writer.commit({ stats: { wpFaults: 2 } });
    dev.close();
    expect(result).toMatchObject({ pageCount: 20, rewrittenPages: 3, pageBytesWritten: 23 * PAGE_SIZE, imageBytes: imageExtent(20).imageBytes });
    const image = validateImage(file, EXPECT);
    expect(image.header.stats).toEqual({ atomicCopyPages: 0, liveWrittenPages: 20, rewrittenPages: 3, wpFaults: 2, precopyRounds: 0, frozenTasks: 0 });
    const pages = new ImageReader(image).readPages(0, 20);
    const expected = first.slice();
    expected.set(first.subarray(0, PAGE_SIZE), 5 * PAGE_SIZE);
    expected.set(second, 6 * PAGE_SIZE);
    expect(Buffer.from(pages).equals(Buffer.from(expected))).toBe(true);
  });

  it('takes the saved context at commit when the constructor had none', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const { context: _unused, ...options } = writerOptions(Uint32Array.of(1, 2));
    const writer = new ImageWriter(dev, options);
    writer.write(0, new Uint8Array(2 * PAGE_SIZE));
    await expect(writer.commit()).rejects.toThrow(/no saved context/);
    const late = { address: 0x2000, bytes: new Uint8Array(CONTEXT_BYTES).fill(0xaa) };
    await writer.commit({ context: late });
    dev.close();
    const image = validateImage(file, EXPECT);
    expect(image.header.context.address).toBe(0x2000);
    expect(image.header.context.bytes.every((b) => b === 0xaa)).toBe(true);
  });

  it('writes an image of zero pages that validates', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, MIN_DEVICE_BYTES);
    await new ImageWriter(dev, writerOptions(new Uint32Array(0))).commit();
    dev.close();
    const image = validateImage(file, EXPECT);
    expect(image.pfns.length).toBe(0);
    expect(image.imageBytes).toBe(2 * PAGE_SIZE);
  });

  it('is deterministic: the same pages written twice, in different orders and runs, give byte-identical files', async () => {
    const next = rng(5);
    const pfns = randomPfns(next, 64);
    const data = randomBytes(next, 64 * PAGE_SIZE);
    const write = async (name: string, order: 'bulk' | 'reverse-pages'): Promise<string> => {
      const file = path.join(dir, name);
      const dev = SwapDevice.create(file, 1 << 20);
      const writer = new ImageWriter(dev, writerOptions(pfns));
      if (order === 'bulk') writer.write(0, data);
      else for (let i = 63; i >= 0; i--) writer.write(i, data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      await writer.commit();
      dev.close();
      return sha256(file);
    };
    const a = await write('a.img', 'bulk');
    expect(await write('b.img', 'bulk')).toBe(a);
    expect(await write('c.img', 'reverse-pages')).toBe(a);
  });
});

describe('write path', () => {
  it('records CRCs the caller took (a save takes them during its atomic copy) as they are: right ones validate, a wrong one is refused', async () => {
    const next = rng(7);
    const pfns = randomPfns(next, 40);
    const data = randomBytes(next, 40 * PAGE_SIZE);
    const crcs = Uint32Array.from({ length: 40 }, (_, i) => zlib.crc32(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)) >>> 0);
    const write = async (name: string, given: Uint32Array): Promise<string> => {
      const file = path.join(dir, name);
      const dev = SwapDevice.create(file, 1 << 20);
      const writer = new ImageWriter(dev, writerOptions(pfns));
      expect(() => writer.write(0, data, { crcs: given.subarray(1) })).toThrow('write: 39 CRCs for 40 pages');
      writer.write(0, data.subarray(0, 20 * PAGE_SIZE), { crcs: given.subarray(0, 20) });
      writer.write(20, data.subarray(20 * PAGE_SIZE));
      await writer.commit();
      dev.close();
      return file;
    };
    expect(validateImage(await write('right.img', crcs), EXPECT).crcs).toEqual(crcs);
    const wrong = crcs.slice();
    wrong[3] = (wrong[3]! ^ 1) >>> 0;
    const err = expectRefusal(await write('wrong.img', wrong), 'BAD_PAGE_CRC');
    expect(err.index).toBe(3);
    expect(err.pfn).toBe(pfns[3]);
  });

  it('writes a large run with one write call, and gathers single pages into few writes', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 16 << 20);
    const pfns = Uint32Array.from({ length: 2048 }, (_, i) => i);
    const writer = new ImageWriter(dev, writerOptions(pfns, { stagingBytes: 1 << 20 }));
    const writes = vi.spyOn(dev, 'writeAt');
    writer.write(0, new Uint8Array(1024 * PAGE_SIZE).fill(1));
    expect(writes).toHaveBeenCalledTimes(1);
    expect(writes.mock.calls[0]![0].length).toBe(1024 * PAGE_SIZE);
    writes.mockClear();
    const page = new Uint8Array(PAGE_SIZE).fill(2);
    for (let i = 1024; i < 2048; i++) writer.write(i, page);
    // 1024 pages through a 1 MiB (256-page) staging buffer: 3 full flushes so far, the 4th at commit.
    expect(writes).toHaveBeenCalledTimes(3);
    await writer.commit();
    const dataWrites = writes.mock.calls.filter(([, offset]) => offset >= imageExtent(2048).dataOffset);
    expect(dataWrites.map(([d]) => d.length)).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
    dev.close();
    expect(validateImage(file, EXPECT).pfns.length).toBe(2048);
  });

  it('writes a run of 256 KiB or more at once from the caller\'s buffer, uncopied, and stages shorter ones', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 16 << 20);
    const pfns = Uint32Array.from({ length: 256 }, (_, i) => i);
    const writer = new ImageWriter(dev, writerOptions(pfns)); // the default 4 MiB stage
    const writes = vi.spyOn(dev, 'writeAt');
    const short = new Uint8Array(63 * PAGE_SIZE).fill(3);
    writer.write(0, short);
    expect(writes).not.toHaveBeenCalled();
    const long = new Uint8Array(64 * PAGE_SIZE).fill(4); // 256 KiB, right after the staged run
    writer.write(63, long);
    // The stage goes first (63 pages), then the long run, as the very buffer passed in.
    expect(writes.mock.calls.map(([d]) => d.length)).toEqual([63 * PAGE_SIZE, 64 * PAGE_SIZE]);
    expect(writes.mock.calls[1]![0]).toBe(long);
    for (let i = 127; i < 256; i++) writer.write(i, short.subarray(0, PAGE_SIZE));
    await writer.commit();
    dev.close();
    expect(validateImage(file, EXPECT).pfns.length).toBe(256);
  });

  it('writes the signature last: after metadata, header and a data sync (fdatasync), followed by another', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const ops: string[] = [];
    const realWrite = dev.writeAt.bind(dev);
    const realSync = dev.syncData.bind(dev);
    vi.spyOn(dev, 'writeAt').mockImplementation((data, offset) => {
      ops.push(`write ${offset}+${data.length}`);
      realWrite(data, offset);
    });
    vi.spyOn(dev, 'syncData').mockImplementation(() => {
      ops.push('sync');
      realSync();
    });
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(10, 20, 30)));
    writer.write(0, new Uint8Array(3 * PAGE_SIZE).fill(7));
    await writer.commit();
    dev.close();
    const { metadataOffset, dataOffset } = imageExtent(3);
    expect(ops).toEqual([
      `write ${dataOffset}+${3 * PAGE_SIZE}`,
      `write ${metadataOffset}+${PAGE_SIZE}`,
      `write ${HEADER_OFFSET}+${PAGE_SIZE}`,
      'sync',
      'write 0+512',
      'sync',
    ]);
  });

  it('a writer that fails before commit leaves the swap signature (no image)', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(1, 2, 3)));
    writer.write(0, new Uint8Array(2 * PAGE_SIZE));
    const err = await expectImageErrorAsync(() => writer.commit(), 'INCOMPLETE_IMAGE');
    expect(err.message).toBe(`cannot commit the image on ${file}: 1 of 3 pages were never written (first: page 2, PFN 0x3)`);
    expect(dev.readSignature().kind).toBe('swap');
    dev.close();
    expectRefusal(file, 'NO_SIGNATURE');
  });

  it('a commit interrupted before the signature (fdatasync fails) leaves no image signature, and the writer is closed', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(1, 2)));
    writer.write(0, new Uint8Array(2 * PAGE_SIZE).fill(3));
    vi.spyOn(dev, 'syncData').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    });
    await expect(writer.commit()).rejects.toThrow(/EIO/);
    expect(dev.readSignature().kind).toBe('swap');
    await expectImageErrorAsync(() => writer.commit(), 'WRITER_CLOSED');
    expectImageError(() => writer.write(0, new Uint8Array(PAGE_SIZE)), 'WRITER_CLOSED');
    dev.close();
    expectRefusal(file, 'NO_SIGNATURE');
  });

  it('a new image over an old one discards the old signature before overwriting its data, so a failed write leaves no image', async () => {
    const { file } = await writeImage('swap.img', 10, 1, 1 << 20);
    const dev = SwapDevice.open(file, { writable: true });
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(1, 2)));
    expect(dev.readSignature().kind).toBe('image'); // constructing writes nothing
    writer.write(0, new Uint8Array(PAGE_SIZE).fill(9));
    writer.write(1, new Uint8Array(PAGE_SIZE).fill(9));
    const realWrite = dev.writeAt.bind(dev);
    vi.spyOn(dev, 'writeAt').mockImplementation((data, offset) => {
      if (offset !== 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      realWrite(data, offset);
    });
    await expect(writer.commit()).rejects.toThrow(/ENOSPC/);
    vi.restoreAllMocks();
    expect(dev.readSignature().kind).toBe('swap');
    dev.close();
    expectRefusal(file, 'NO_SIGNATURE');
  });

  it('refuses an image that does not fit the device, giving both sizes, and writes nothing', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 64 * PAGE_SIZE);
    const before = sha256(file);
    expect(dev.maxPages()).toBe(61);
    const pfns = Uint32Array.from({ length: 100 }, (_, i) => i);
    const err = expectImageError(() => new ImageWriter(dev, writerOptions(pfns)), 'DEVICE_TOO_SMALL');
    expect(err.message).toBe(`an image of 100 pages needs 421,888 bytes, but swap device ${file} holds 262,144 bytes (room for 61 pages)`);
    expect(err).toMatchObject({ expected: 421888, actual: 262144, count: 100 });
    dev.close();
    expect(sha256(file)).toBe(before);
  });

  it('maxPages() is exact: that many pages fit and one more does not', async () => {
    for (const bytes of [MIN_DEVICE_BYTES, 64 * PAGE_SIZE, (1 << 20) + 512, 3 << 20]) {
      const file = path.join(dir, `swap-${bytes}.img`);
      const dev = SwapDevice.create(file, bytes);
      const max = dev.maxPages();
      expect(imageExtent(max).imageBytes).toBeLessThanOrEqual(bytes);
      expect(imageExtent(max + 1).imageBytes).toBeGreaterThan(bytes);
      new ImageWriter(dev, writerOptions(Uint32Array.from({ length: max }, (_, i) => i)));
      expectImageError(() => new ImageWriter(dev, writerOptions(Uint32Array.from({ length: max + 1 }, (_, i) => i))), 'DEVICE_TOO_SMALL');
      dev.close();
    }
  });

  it('refuses bad options with the reason', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    expect(() => new ImageWriter(dev, writerOptions(Uint32Array.of(3, 2)))).toThrow('pfns must be strictly ascending: pfns[1] = 0x2 follows 0x3');
    expect(() => new ImageWriter(dev, writerOptions(Uint32Array.of(FRAMES)))).toThrow(`pfns[0] = 0x1000 is not below frameCount ${FRAMES}`);
    expect(() => new ImageWriter(dev, writerOptions(Uint32Array.of(1), { buildId: 'abc' }))).toThrow(/buildId must be 64 hex digits/);
    expect(() => new ImageWriter(dev, writerOptions(Uint32Array.of(1), { strategy: 'x'.repeat(33) }))).toThrow(/strategy must be 1 to 32/);
    expect(() => new ImageWriter(dev, writerOptions(Uint32Array.of(1), { context: { address: 0, bytes: new Uint8Array(80) } }))).toThrow(`context.bytes must be ${CONTEXT_BYTES} bytes (struct saved_context), got 80`);
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(1, 2)));
    expect(() => writer.write(2, new Uint8Array(PAGE_SIZE))).toThrow('write: pages 2..2 are outside the image (2 pages)');
    expect(() => writer.write(0, new Uint8Array(100))).toThrow(/not a whole number/);
    dev.close();
    const readOnly = SwapDevice.open(file);
    expect(() => new ImageWriter(readOnly, writerOptions(Uint32Array.of(1)))).toThrow(/read-only/);
    readOnly.close();
  });

  it('indexOf() finds the page index of a PFN', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 1 << 20);
    const writer = new ImageWriter(dev, writerOptions(Uint32Array.of(4, 9, 100, 4095)));
    expect([4, 9, 100, 4095, 0, 5, 4094].map((p) => writer.indexOf(p))).toEqual([0, 1, 2, 3, -1, -1, -1]);
    dev.close();
  });
});

describe('swap device', () => {
  it('create() makes a file of the size with the swap signature and every block allocated', async () => {
    const file = path.join(dir, 'swap.img');
    const dev = SwapDevice.create(file, 64 << 20);
    expect(dev.bytes).toBe(64 << 20);
    expect(dev.readSignature()).toMatchObject({ kind: 'swap', deviceBytes: 64 << 20 });
    dev.close();
    expect(fs.statSync(file).blocks * 512).toBeGreaterThanOrEqual(64 << 20);
    expect(Buffer.from(readRange(file, 0, 8)).toString('latin1')).toBe('HLSWAP01');
    expect(readRange(file, 40 << 20, 1 << 20).every((b) => b === 0)).toBe(true);
  });

  it('create() keeps the blocks of a device of the same size; allocate: false makes a sparse file', async () => {
    const file = path.join(dir, 'swap.img');
    SwapDevice.create(file, 8 << 20).close();
    const inode = fs.statSync(file).ino;
    const marker = new Uint8Array(4096).fill(0xa5);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, marker, 0, 4096, 4 << 20);
    fs.closeSync(fd);
    SwapDevice.create(file, 8 << 20).close();
    // Re-made in place: the signature is new, the blocks (and what was in them) stay, as after mkswap.
    expect(fs.statSync(file).ino).toBe(inode);
    expect(readRange(file, 4 << 20, 4096).every((b) => b === 0xa5)).toBe(true);
    expect(SwapDevice.open(file).readSignature().kind).toBe('swap');
    const sparse = path.join(dir, 'sparse.img');
    SwapDevice.create(sparse, 64 << 20, { allocate: false }).close();
    expect(fs.statSync(sparse).blocks * 512).toBeLessThan(1 << 20);
  });

  it.skipIf(!fs.existsSync('/dev/shm'))('create() leaves a device sparse on a file system that keeps files in memory (tmpfs)', () => {
    const file = path.join(fs.mkdtempSync('/dev/shm/hiberlab-'), 'swap.img');
    try {
      SwapDevice.create(file, 16 << 20).close();
      expect(fs.statSync(file).blocks * 512).toBeLessThan(1 << 20);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  it('create() refuses an existing file that is not a swap device and leaves it alone', async () => {
    const file = path.join(dir, 'precious.txt');
    fs.writeFileSync(file, 'do not overwrite me');
    const err = expectImageError(() => SwapDevice.create(file, 1 << 20), 'NOT_A_SWAP_DEVICE');
    expect(err.message).toBe(`refusing to make ${file} a swap device: it exists (19 bytes) and has no swap or image signature`);
    expect(fs.readFileSync(file, 'utf8')).toBe('do not overwrite me');
  });

  it('create() uses an existing empty file and re-makes an existing swap device', async () => {
    const file = path.join(dir, 'swap.img');
    fs.writeFileSync(file, '');
    SwapDevice.create(file, 1 << 20).close();
    const { file: imageFile } = await writeImage('image.img', 3);
    const dev = SwapDevice.create(imageFile, 2 << 20);
    expect(dev.readSignature().kind).toBe('swap');
    expect(dev.bytes).toBe(2 << 20);
    dev.close();
  });

  it('ensure() creates a missing device, opens a big enough one, and refuses a small or foreign one', async () => {
    const file = path.join(dir, 'swap.img');
    const created = SwapDevice.ensure(file, 1 << 20);
    expect(created.bytes).toBe(1 << 20);
    created.close();
    const { file: imageFile } = await writeImage('image.img', 3, 1, 2 << 20);
    const opened = SwapDevice.ensure(imageFile, 1 << 20);
    expect(opened.writable).toBe(true);
    expect(opened.readSignature().kind).toBe('image');
    opened.close();
    const err = expectImageError(() => SwapDevice.ensure(file, 2 << 20), 'DEVICE_TOO_SMALL');
    expect(err.message).toBe(`swap device ${file} holds 1,048,576 bytes, but 2,097,152 bytes were asked for; delete it or make a bigger one`);
    const foreign = path.join(dir, 'foreign.bin');
    fs.writeFileSync(foreign, Buffer.alloc(1 << 20, 1));
    expectImageError(() => SwapDevice.ensure(foreign, 1 << 20), 'NOT_A_SWAP_DEVICE');
  });
});

describe('validation refuses, naming what and where, and never changes the file', () => {
  it('NO_SIGNATURE on a device with the swap signature', async () => {
    const file = path.join(dir, 'swap.img');
    SwapDevice.create(file, 1 << 20).close();
    const err = expectRefusal(file, 'NO_SIGNATURE');
    expect(err.message).toBe(`no hibernation image on ${file}: it has the swap signature "HLSWAP01"`);
  });

  it('BAD_SIGNATURE on an unknown signature', async () => {
    const { file } = await writeImage('swap.img', 4);
    patch(file, 0, Buffer.from('GARBAGE!'));
    const err = expectRefusal(file, 'BAD_SIGNATURE');
    expect(err.message).toBe(`${file} is neither a swap device nor a hibernation image: sector 0 starts with 4741524241474521`);
  });

  it('TRUNCATED when the file is cut inside the data, giving both sizes', async () => {
    const { file } = await writeImage('swap.img', 40);
    const { dataOffset } = imageExtent(40);
    fs.truncateSync(file, dataOffset + 10 * PAGE_SIZE);
    const err = expectRefusal(file, 'TRUNCATED');
    expect(err.message).toBe(`${file} is truncated: the image's data (40 pages) region ends at byte ${dataOffset + 40 * PAGE_SIZE} but the file has ${(dataOffset + 10 * PAGE_SIZE).toLocaleString('en-US')} bytes`);
    expect(err).toMatchObject({ expected: dataOffset + 40 * PAGE_SIZE, actual: dataOffset + 10 * PAGE_SIZE });
  });

  it('TRUNCATED when the file is cut inside the header page', async () => {
    const { file } = await writeImage('swap.img', 4);
    fs.truncateSync(file, HEADER_OFFSET + 100);
    const err = expectRefusal(file, 'TRUNCATED');
    expect(err.message).toBe(`${file} is truncated: the image header page ends at byte 8192 but the file has 4,196 bytes`);
  });

  it('BAD_MAGIC when the signature points at something that is not a header', async () => {
    const { file } = await writeImage('swap.img', 4);
    patch(file, HEADER_OFFSET, Buffer.from('NOTMAGIC'));
    const err = expectRefusal(file, 'BAD_MAGIC');
    expect(err.message).toBe(`no image header at offset 4096 of ${file}: it starts with 4e4f544d41474943, expected "HIBERLAB"`);
  });

  it('UNSUPPORTED_VERSION for another format version', async () => {
    const { file } = await writeImage('swap.img', 4);
    patch(file, HEADER_OFFSET + HEADER_LAYOUT.at.version.offset, Uint8Array.of(1, 0, 0, 0));
    const err = expectRefusal(file, 'UNSUPPORTED_VERSION');
    expect(err.message).toBe(`the image on ${file} has format version 1; this build reads version ${FORMAT_VERSION}`);
  });

  it('BAD_HEADER_CRC when a header field is flipped, with stored and computed CRCs', async () => {
    const { file } = await writeImage('swap.img', 4);
    flipByte(file, HEADER_OFFSET + HEADER_LAYOUT.at.ram_bytes.offset + 2);
    const err = expectRefusal(file, 'BAD_HEADER_CRC');
    expect(err.message).toMatch(new RegExp(`^the image header at offset 4096 of ${file} is corrupt: stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$`));
    expect(err.expected).not.toBe(err.actual);
  });

  it('SIGNATURE_MISMATCH when the header is intact but not the one the signature recorded', async () => {
    const { file } = await writeImage('swap.img', 4);
    const sigCrc = readRange(file, SIGNATURE_LAYOUT.at.header_crc.offset, 4);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.precopy_rounds.offset, 5, true));
    patch(file, SIGNATURE_LAYOUT.at.header_crc.offset, sigCrc);
    const err = expectRefusal(file, 'SIGNATURE_MISMATCH');
    expect(err.message).toMatch(/is not the one its signature recorded: header CRC 0x[0-9a-f]{8}, signature says 0x[0-9a-f]{8}$/);
  });

  it('BAD_METADATA when the header claims more pages than frames', async () => {
    const { file } = await writeImage('swap.img', 4);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.frame_count.offset, 3, true));
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toBe(`the image header of ${file} claims page_count 4, more than frame_count 3`);
  });

  it('BAD_METADATA when the header claims a count beyond the 32-bit limit', async () => {
    const { file } = await writeImage('swap.img', 4);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.frame_count.offset, 0xffffffff, true));
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toBe(`the image header of ${file} claims frame_count 4294967295, outside 1..1048576`);
  });

  it('BAD_METADATA when the header moves the data region elsewhere', async () => {
    const { file } = await writeImage('swap.img', 4);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.data_offset.offset, 1 << 30, true));
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toBe(`the image header of ${file} claims data_offset 1073741824, expected 12288 (the page after the metadata)`);
  });

  it('BAD_METADATA when a metadata byte is flipped (metadata CRC)', async () => {
    const { file } = await writeImage('swap.img', 4);
    flipByte(file, imageExtent(4).metadataOffset + 20);
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toMatch(new RegExp(`^the image metadata at offset 8192 of ${file} is corrupt: stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$`));
  });

  it('BAD_METADATA when the PFNs are not ascending', async () => {
    const { file, pfns } = await writeImage('swap.img', 4);
    forge(file, (_h, m) => {
      m.setUint32(8, pfns[1]!, true);
      m.setUint32(4, pfns[2]!, true);
    });
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toBe(`the PFNs in the image metadata of ${file} are not ascending: entry 2 (PFN 0x${pfns[1]!.toString(16)}) follows entry 1 (PFN 0x${pfns[2]!.toString(16)})`);
    expect(err).toMatchObject({ index: 2, pfn: pfns[1] });
  });

  it('BAD_METADATA when a PFN is beyond frame_count', async () => {
    const { file } = await writeImage('swap.img', 4);
    forge(file, (_h, m) => m.setUint32(12, FRAMES + 5, true));
    const err = expectRefusal(file, 'BAD_METADATA');
    expect(err.message).toBe(`entry 3 of the image metadata of ${file} is PFN 0x1005, beyond the 4096 frames of the image`);
  });

  it('BAD_METADATA for a compression this build does not know, or one its metadata does not have', async () => {
    const { file } = await writeImage('swap.img', 4);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.compression.offset, 7, true));
    expect(expectRefusal(file, 'BAD_METADATA').message).toBe(`the image header of ${file} claims compression 7, which this build does not know (0: none, 1: LZ4)`);
    forge(file, (h) => h.setUint32(HEADER_LAYOUT.at.compression.offset, 1, true));
    expect(expectRefusal(file, 'BAD_METADATA').message).toBe(`the image header of ${file} claims metadata_bytes 32 for 4 pages (expected 48)`);
  });

  it('WRONG_BUILD when another guest build wrote the image, both ids shortened', async () => {
    const { file } = await writeImage('swap.img', 4);
    const err = expectRefusal(file, 'WRONG_BUILD', { buildId: OTHER_BUILD, ramBytes: RAM });
    expect(err.message).toBe(`the image on ${file} was written by guest build ${BUILD.slice(0, 12)}…, but the running guest is ${OTHER_BUILD.slice(0, 12)}…`);
    expect(err).toMatchObject({ expected: OTHER_BUILD, actual: BUILD });
  });

  it('WRONG_RAM_SIZE when the RAM size differs, both in MiB', async () => {
    const { file } = await writeImage('swap.img', 4);
    const err = expectRefusal(file, 'WRONG_RAM_SIZE', { buildId: BUILD, ramBytes: 32 << 20 });
    expect(err.message).toBe(`the image on ${file} is for 16 MiB of RAM, but this machine has 32 MiB`);
  });

  it('BAD_PAGE_CRC for one flipped byte in a page, naming the page index and PFN', async () => {
    const { file, pfns } = await writeImage('swap.img', 40, 9);
    const { dataOffset } = imageExtent(40);
    flipByte(file, dataOffset + 17 * PAGE_SIZE + 1234);
    const err = expectRefusal(file, 'BAD_PAGE_CRC');
    const pfnHex = `0x${pfns[17]!.toString(16)}`;
    expect(err.message).toMatch(new RegExp(`^page 17 \\(PFN ${pfnHex}\\) at offset ${dataOffset + 17 * PAGE_SIZE} of ${file} is corrupt: stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$`));
    expect(err).toMatchObject({ index: 17, pfn: pfns[17], count: 1, offset: dataOffset + 17 * PAGE_SIZE });
  });

  it('BAD_PAGE_CRC reports the first bad page and how many are bad', async () => {
    const { file, pfns } = await writeImage('swap.img', 40, 9);
    const { dataOffset } = imageExtent(40);
    for (const index of [30, 8, 39]) flipByte(file, dataOffset + index * PAGE_SIZE);
    const err = validateWithSmallChunks(file);
    expect(err).toMatchObject({ code: 'BAD_PAGE_CRC', index: 8, pfn: pfns[8], count: 3 });
    expect(err.message).toMatch(/; 3 bad pages in all$/);
  });

  it('checks in order: of several defects the earliest check wins', async () => {
    const { file } = await writeImage('swap.img', 8);
    flipByte(file, imageExtent(8).dataOffset + 5);
    expectRefusal(file, 'WRONG_RAM_SIZE', { buildId: BUILD, ramBytes: 8 << 20 });
    expectRefusal(file, 'WRONG_BUILD', { buildId: OTHER_BUILD, ramBytes: 8 << 20 });
    flipByte(file, imageExtent(8).metadataOffset);
    expectRefusal(file, 'BAD_METADATA', { buildId: OTHER_BUILD, ramBytes: 8 << 20 });
    flipByte(file, HEADER_OFFSET + HEADER_LAYOUT.at.strategy.offset);
    expectRefusal(file, 'BAD_HEADER_CRC', { buildId: OTHER_BUILD, ramBytes: 8 << 20 });
    patch(file, 0, Buffer.from('HLSWAP01'));
    expectRefusal(file, 'NO_SIGNATURE', { buildId: OTHER_BUILD, ramBytes: 8 << 20 });
  });

  it('reads pages in bounded chunks, never the whole file at once', async () => {
    const { file } = await writeImage('swap.img', 200);
    const dev = SwapDevice.open(file);
    // The real module object (the scan calls it; vitest hands this file a copy of node:fs).
    const reads = vi.spyOn(createRequire(import.meta.url)('node:fs') as typeof fs, 'readSync');
    let sizes: number[];
    try {
      validateImage(dev, EXPECT, { chunkBytes: 16 * PAGE_SIZE });
      sizes = reads.mock.calls.filter(([fd]) => fd === dev.fileDescriptor).map((call) => (call as unknown[])[3] as number);
    } finally {
      reads.mockRestore();
    }
    expect(Math.max(...sizes)).toBe(16 * PAGE_SIZE);
    expect(sizes.filter((s) => s === 16 * PAGE_SIZE).length).toBe(12); // 200 pages = 12 chunks of 16 + one of 8
    expect(sizes.filter((s) => s === 8 * PAGE_SIZE).length).toBe(1);
    dev.close();
  });
});

function validateWithSmallChunks(file: string): ImageError {
  return expectImageError(() => validateImage(file, EXPECT, { chunkBytes: 4 * PAGE_SIZE }), 'BAD_PAGE_CRC');
}

/** A fresh CRC thread for every test of the describe block (handed to `set`), closed after it. */
function useCrcThread(set: (thread: CrcThread) => void): void {
  let thread: CrcThread;
  beforeEach(() => {
    thread = CrcThread.start();
    set(thread);
  });
  afterEach(async () => {
    await thread.close();
  });
}

describe('validation with a CRC thread', () => {
  let thread: CrcThread;
  useCrcThread((t) => (thread = t));

  it('accepts a good image with the same result as the single-threaded validation, and the file is unchanged', async () => {
    const { file, pfns } = await writeImage('swap.img', 300);
    const before = sha256(file);
    const one = validateImage(file, EXPECT, { chunkBytes: 8 * PAGE_SIZE });
    const two = await validateImageAsync(file, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: thread });
    expect(two.pfns).toEqual(pfns);
    expect(two.crcs).toEqual(one.crcs);
    expect(two.header).toEqual(one.header);
    expect(sha256(file)).toBe(before);
  });

  it('the thread alone scans every chunk it is given and finds exactly the bad pages, lowest first', async () => {
    const { file, data } = await writeImage('swap.img', 100);
    const good = validateImage(file, EXPECT);
    for (const page of [97, 5, 40]) flipByte(file, imageExtent(100).dataOffset + page * PAGE_SIZE + 123);
    const dev = SwapDevice.open(file);
    const counter = new SharedArrayBuffer(4);
    const result = await thread.run({ fd: dev.fileDescriptor, dataOffset: good.dataOffset, pageCount: 100, chunkPages: 16, crcs: good.crcs, counter });
    dev.close();
    expect(result).toEqual({
      chunks: 7, // 100 pages: 6 chunks of 16 + one of 4
      badPages: 3,
      first: { index: 5, expected: good.crcs[5], actual: zlib.crc32(flipped(data, 5, 123)) >>> 0 },
    });
    expect(new Int32Array(counter)[0]).toBeGreaterThanOrEqual(7);
  });

  it('refuses a flipped page byte with BAD_PAGE_CRC naming the lowest bad page and the count, whichever thread found them', async () => {
    const { file } = await writeImage('swap.img', 300);
    const dataOffset = imageExtent(300).dataOffset;
    for (const page of [299, 150, 17]) flipByte(file, dataOffset + page * PAGE_SIZE);
    const before = sha256(file);
    const err = await validateImageAsync(file, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: thread }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('BAD_PAGE_CRC');
    expect(err).toMatchObject({ index: 17, count: 3, offset: dataOffset + 17 * PAGE_SIZE });
    expect(sha256(file)).toBe(before);
  });

  it('reports a file that ends inside a chunk as the offset where it ended', async () => {
    const { file } = await writeImage('swap.img', 40);
    const good = validateImage(file, EXPECT);
    const dev = SwapDevice.open(file);
    const end = dev.bytes;
    const pageCount = (end - good.dataOffset) / PAGE_SIZE + 3; // three pages past the end of the file
    const result = await thread.run({ fd: dev.fileDescriptor, dataOffset: good.dataOffset, pageCount, chunkPages: 16, crcs: new Uint32Array(pageCount), counter: new SharedArrayBuffer(4) });
    dev.close();
    expect(result).toMatchObject({ short: end });
  });

  it('without a working thread the calling thread validates alone, with the same outcome', async () => {
    const { file, pfns } = await writeImage('swap.img', 50);
    await thread.close();
    expect(thread.available).toBe(false);
    expect(thread.failure).toBe('it was closed');
    expect((await validateImageAsync(file, EXPECT, { chunkBytes: 4 * PAGE_SIZE, crcThread: thread })).pfns).toEqual(pfns);
    flipByte(file, imageExtent(50).dataOffset + 3 * PAGE_SIZE);
    await expect(validateImageAsync(file, EXPECT, { chunkBytes: 4 * PAGE_SIZE, crcThread: thread })).rejects.toMatchObject({ code: 'BAD_PAGE_CRC', index: 3, count: 1 });
  });
});

describe('a validation begun ahead of its verdict (beginImageValidation)', () => {
  let thread: CrcThread;
  useCrcThread((t) => (thread = t));

  /** Blocks this thread (no event-loop turn) until the shared scan counter passes `chunks`, or 20 s. */
  function blockUntilTaken(counter: Int32Array, chunks: number): number {
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const start = Date.now();
    while (Atomics.load(counter, 0) < chunks && Date.now() - start < 20_000) Atomics.wait(nap, 0, 0, 5);
    return Atomics.load(counter, 0);
  }

  it('the CRC thread scans every page while this thread is busy elsewhere; finish() then gives what validateImageAsync gives', async () => {
    const { file, pfns } = await writeImage('swap.img', 300);
    const before = sha256(file);
    const dev = SwapDevice.open(file);
    const run = vi.spyOn(thread, 'run');
    const begun = beginImageValidation(dev, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: thread });
    expect(run).toHaveBeenCalledTimes(1);
    const counter = new Int32Array(run.mock.calls[0]![0].counter);
    // 300 pages in chunks of 8: 38 chunks, all taken by the thread while this one never yields.
    expect(blockUntilTaken(counter, 38)).toBeGreaterThanOrEqual(38);
    const got = await begun.finish();
    const alone = validateImage(dev, EXPECT);
    dev.close();
    expect(got.pfns).toEqual(pfns);
    expect(got.crcs).toEqual(alone.crcs);
    expect(got.header).toEqual(alone.header);
    expect(got.fileVersion).toBe(alone.fileVersion);
    expect(got.scan).toEqual({ chunks: 38, crcThreadChunks: 38 });
    expect(alone.scan).toEqual({ chunks: Math.ceil(300 / 256), crcThreadChunks: 0 });
    expect(sha256(file)).toBe(before);
  });

  it('finish() refuses what validateImageAsync refuses, with the same error: bad pages, no signature', async () => {
    const { file } = await writeImage('swap.img', 300);
    const dataOffset = imageExtent(300).dataOffset;
    for (const page of [299, 150, 17]) flipByte(file, dataOffset + page * PAGE_SIZE);
    const dev = SwapDevice.open(file);
    await expect(beginImageValidation(dev, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: thread }).finish()).rejects.toMatchObject({
      code: 'BAD_PAGE_CRC', index: 17, count: 3, offset: dataOffset + 17 * PAGE_SIZE,
    });
    dev.close();
    const empty = path.join(dir, 'empty.img');
    SwapDevice.create(empty, 1 << 20).close();
    const blank = SwapDevice.open(empty);
    const begun = beginImageValidation(blank, EXPECT, { crcThread: thread }); // does not throw: the verdict is finish()'s
    await expect(begun.finish()).rejects.toMatchObject({ code: 'NO_SIGNATURE' });
    blank.close();
  });

  it('a page corrupted after the scan but before finish() is refused: the file changed, so it is checked again', async () => {
    const { file } = await writeImage('swap.img', 300);
    const dev = SwapDevice.open(file);
    const run = vi.spyOn(thread, 'run');
    const begun = beginImageValidation(dev, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: thread });
    expect(blockUntilTaken(new Int32Array(run.mock.calls[0]![0].counter), 38)).toBeGreaterThanOrEqual(38);
    flipByte(file, imageExtent(300).dataOffset + 42 * PAGE_SIZE + 9);
    await expect(begun.finish()).rejects.toMatchObject({ code: 'BAD_PAGE_CRC', index: 42, count: 1 });
    dev.close();
  });

  it('a CRC thread that has not begun the job by the time this thread took every chunk is not waited for', async () => {
    const { file, pfns } = await writeImage('swap.img', 300);
    const dev = SwapDevice.open(file);
    // A thread still starting up: it takes the job and never begins it (nor answers).
    const starting = { available: true, run: (_job: unknown) => new Promise<never>(() => {}) } as unknown as CrcThread;
    const got = await beginImageValidation(dev, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: starting }).finish();
    expect(got.pfns).toEqual(pfns);
    expect(got.scan).toEqual({ chunks: 38, crcThreadChunks: 0 });
    await beginImageValidation(dev, EXPECT, { chunkBytes: 8 * PAGE_SIZE, crcThread: starting }).cancel();
    dev.close();
  }, 10_000);

  it('the CRC thread does nothing with a job closed before it began (it may no longer read the file)', async () => {
    const counter = new SharedArrayBuffer(8);
    Atomics.store(new Int32Array(counter), 1, 2);
    const result = await thread.run({ fd: 1 << 30, dataOffset: 0, pageCount: 64, chunkPages: 16, crcs: new Uint32Array(64), counter });
    expect(result).toEqual({ chunks: 0, badPages: 0 });
    expect(new Int32Array(counter)[0]).toBe(0);
  });

  it('cancel() leaves the CRC thread reading nothing more: the file may be closed at once, and the thread takes the next job', async () => {
    const { file, pfns } = await writeImage('swap.img', 300);
    const dev = SwapDevice.open(file);
    const run = vi.spyOn(thread, 'run');
    const begun = beginImageValidation(dev, EXPECT, { chunkBytes: 4 * PAGE_SIZE, crcThread: thread });
    expect(thread.available).toBe(false);
    await begun.cancel();
    dev.close();
    // Whether it had begun (then cancel waited for it) or not (then it does nothing), its
    // answer is no read error.
    const answer = await run.mock.results[0]!.value;
    expect(answer).not.toHaveProperty('error');
    expect(answer).not.toHaveProperty('short');
    expect(thread.available).toBe(true);
    const again = SwapDevice.open(file);
    expect((await validateImageAsync(again, EXPECT, { crcThread: thread })).pfns).toEqual(pfns);
    again.close();
  });
});

describe('after validation', () => {
  it('ImageReader re-checks CRCs: a page changed after validation gives BAD_PAGE_CRC', async () => {
    const { file, pfns } = await writeImage('swap.img', 30);
    const image = validateImage(file, EXPECT);
    flipByte(file, image.dataOffset + 21 * PAGE_SIZE + 7);
    const reader = new ImageReader(image);
    expect(reader.readPages(0, 21).length).toBe(21 * PAGE_SIZE);
    const err = expectImageError(() => reader.readPages(10, 20), 'BAD_PAGE_CRC');
    expect(err).toMatchObject({ index: 21, pfn: pfns[21], count: 1 });
    reader.close();
  });

  it('resetSignature makes the image unresumable: validate says NO_SIGNATURE, the data stays', async () => {
    const { file } = await writeImage('swap.img', 5);
    const dataBefore = readRange(file, HEADER_OFFSET, 32 << 10);
    const dev = SwapDevice.open(file, { writable: true });
    resetSignature(dev);
    expect(dev.readSignature()).toMatchObject({ kind: 'swap', deviceBytes: 4 << 20 });
    dev.close();
    expectRefusal(file, 'NO_SIGNATURE');
    expect(Buffer.from(readRange(file, HEADER_OFFSET, 32 << 10)).equals(Buffer.from(dataBefore))).toBe(true);
  });

  it('resetSignature refuses a file that is not a swap device', async () => {
    const file = path.join(dir, 'foreign.bin');
    fs.writeFileSync(file, Buffer.alloc(8192, 0x55));
    const dev = SwapDevice.open(file, { writable: true });
    expectImageError(() => resetSignature(dev), 'NOT_A_SWAP_DEVICE');
    dev.close();
    expect(fs.readFileSync(file).every((b) => b === 0x55)).toBe(true);
  });
});

describe('inspectImage', () => {
  it('reports a good image: header fields, sizes and every check ok', async () => {
    const { file } = await writeImage('swap.img', 12);
    const report = inspectImage(file);
    expect(report).toMatchObject({
      path: file,
      fileBytes: 4 << 20,
      signature: { kind: 'image', headerOffset: 4096, deviceBytes: 4 << 20 },
      header: { version: FORMAT_VERSION, buildId: BUILD, ramBytes: RAM, frameCount: FRAMES, pageCount: 12, strategy: 'swsusp', contextAddress: '0x105000', imageBytes: imageExtent(12).imageBytes },
      checks: { header: 'ok', metadata: 'ok', pages: 'ok', badPages: 0 },
      problems: [],
      resumable: true,
    });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(formatInspection(report)).toContain('resumable   yes');
    for (const line of formatInspection(report).split('\n').slice(1)) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('reports a bad page without throwing', async () => {
    const { file, pfns } = await writeImage('swap.img', 12);
    flipByte(file, imageExtent(12).dataOffset + 3 * PAGE_SIZE + 99);
    const before = sha256(file);
    const report = inspectImage(file);
    expect(report.checks).toMatchObject({ header: 'ok', metadata: 'ok', pages: 'bad', badPages: 1, firstBadPage: { index: 3, pfn: `0x${pfns[3]!.toString(16)}` } });
    expect(report.problems.map((p) => p.code)).toEqual(['BAD_PAGE_CRC']);
    expect(report.resumable).toBe(false);
    expect(sha256(file)).toBe(before);
    expect(formatInspection(report)).toContain('pages bad (1 bad, first: page 3');
  });

  it('reports a bad header with its fields, and skips what depends on it', async () => {
    const { file } = await writeImage('swap.img', 12);
    flipByte(file, HEADER_OFFSET + HEADER_LAYOUT.at.precopy_rounds.offset);
    const report = inspectImage(file);
    expect(report.header?.pageCount).toBe(12);
    expect(report.checks).toMatchObject({ header: 'bad', metadata: 'skipped', pages: 'skipped' });
    expect(report.problems.map((p) => p.code)).toEqual(['BAD_HEADER_CRC']);
  });

  it('reports an empty swap device, a truncated image and an unknown file', async () => {
    const swap = path.join(dir, 'swap.img');
    SwapDevice.create(swap, 1 << 20).close();
    expect(inspectImage(swap)).toMatchObject({ signature: { kind: 'swap' }, checks: { header: 'skipped' }, problems: [], resumable: false });
    const { file } = await writeImage('image.img', 12);
    fs.truncateSync(file, imageExtent(12).dataOffset + PAGE_SIZE);
    expect(inspectImage(file)).toMatchObject({ checks: { header: 'ok', metadata: 'skipped', pages: 'skipped' }, problems: [{ code: 'TRUNCATED' }] });
    const foreign = path.join(dir, 'foreign.bin');
    fs.writeFileSync(foreign, 'hello');
    expect(inspectImage(foreign)).toMatchObject({ signature: { kind: 'unknown' }, problems: [{ code: 'BAD_SIGNATURE' }] });
  });

  it('throws only when the file cannot be read', async () => {
    expect(() => inspectImage(path.join(dir, 'missing.img'))).toThrow(/ENOENT/);
  });
});

describe('format constants', () => {
  it('the saved context size matches the guest ABI, and the header is 2324 bytes (with the swap map)', async () => {
    expect(CONTEXT_BYTES).toBe(STRUCTS.saved_context.size);
    expect(HEADER_SIZE).toBe(2324);
    expect(HEADER_LAYOUT.at.header_crc.offset + 4).toBe(HEADER_SIZE);
  });
});

describe('property: validate + read returns exactly what was written', () => {
  it('for 60 random small images written in random runs with random rewrites', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const next = rng(seed * 7919);
      const frames = 1 + Math.floor(next() * 2000);
      const count = Math.floor(next() * Math.min(frames, 120));
      const pfns = randomPfns(next, count, frames);
      const file = path.join(dir, `prop-${seed}.img`);
      const dev = SwapDevice.create(file, imageExtent(count).imageBytes + Math.floor(next() * 8) * 512);
      const writer = new ImageWriter(dev, writerOptions(pfns, { frameCount: frames, durable: false, stagingBytes: PAGE_SIZE * (1 + Math.floor(next() * 8)) }));
      // The naive oracle: the last bytes written for each page.
      const oracle: Uint8Array[] = [];
      const writeRun = (first: number, n: number): void => {
        const data = randomBytes(next, n * PAGE_SIZE);
        if (n === 1 && next() < 0.5) writer.write(first, data);
        else writer.write(first, data);
        for (let i = 0; i < n; i++) oracle[first + i] = data.slice(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      };
      for (let first = 0; first < count;) {
        const n = Math.min(count - first, 1 + Math.floor(next() * 10));
        writeRun(first, n);
        first += n;
      }
      const rewrites = count === 0 ? 0 : Math.floor(next() * 5);
      for (let r = 0; r < rewrites; r++) {
        const first = Math.floor(next() * count);
        writeRun(first, Math.min(count - first, 1 + Math.floor(next() * 3)));
      }
      await writer.commit();
      dev.close();

      const image = validateImage(file, { buildId: BUILD, ramBytes: RAM }, { chunkBytes: PAGE_SIZE * (1 + Math.floor(next() * 16)) });
      expect(Array.from(image.pfns)).toEqual(Array.from(pfns));
      const reader = new ImageReader(image);
      for (let first = 0; first < count;) {
        const n = Math.min(count - first, 1 + Math.floor(next() * 20));
        const got = reader.readPages(first, n);
        for (let i = 0; i < n; i++) {
          expect(Buffer.from(got.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)).equals(Buffer.from(oracle[first + i]!)), `seed ${seed} page ${first + i}`).toBe(true);
        }
        first += n;
      }
      reader.close();
    }
  });
});
