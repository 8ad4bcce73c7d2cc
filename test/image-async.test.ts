import { randomFillSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CONTEXT_BYTES, ImageWriter, SwapDevice, imageExtent, validateImage, type ImageWriterOptions } from '../src/image/index.ts';
import { CRC32_IMPLEMENTATION, CRC32_PAGES_IMPLEMENTATION, crc32, crc32Pages, crc32PagesPortable, crc32Portable } from '../src/image/crc.ts';
import { hiberlabNative } from '../src/native.ts';
import { sha256File, tempSwapPath } from './helpers.ts';

const BUILD = 'ab'.repeat(32);

// Node has WebAssembly; @types/node does not declare it. Its memory starts on a page
// boundary, like the guest RAM O_DIRECT writes come from.
declare const WebAssembly: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } };

/** A writer with this file's usual image (a 32 MiB guest), not durable unless `extra` says so. */
function testWriter(dev: SwapDevice, pfns: Uint32Array, extra: Partial<ImageWriterOptions> = {}): ImageWriter {
  return new ImageWriter(dev, { pfns, buildId: BUILD, ramBytes: 32 << 20, frameCount: 8192, strategy: 'test', context: { address: 0x1000, bytes: new Uint8Array(CONTEXT_BYTES) }, durable: false, ...extra });
}

/** The file write() writes for these pages: what every other way of writing them must equal. */
async function referenceFile(data: Uint8Array, pfns: Uint32Array): Promise<string> {
  const path = tempSwapPath('reference');
  await writeImage(path, data, pfns, false);
  return path;
}

async function writeImage(path: string, data: Uint8Array, pfns: Uint32Array, runs: boolean): Promise<void> {
  const dev = SwapDevice.ensure(path, 64 << 20);
  const w = testWriter(dev, pfns);
  if (!runs) {
    w.write(0, data);
  } else {
    // Two runs: a long one (overlapped path) and a short tail.
    const split = pfns.length - 3;
    await w.writeRuns(0, [data.subarray(0, split * 4096)]);
    await w.writeRuns(split, [data.subarray(split * 4096)]);
  }
  await w.commit();
  dev.close();
}

describe('ImageWriter.writeRuns', () => {
  it('writes exactly the file write() writes, CRCs included', async () => {
    const n = 5000; // ~20 MiB: several 2 MiB overlap chunks
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + i);
    const data = randomFillSync(new Uint8Array(n * 4096));
    const a = tempSwapPath('sync');
    const b = tempSwapPath('async');
    await writeImage(a, data, pfns, false);
    await writeImage(b, data, pfns, true);
    expect(sha256File(b)).toBe(sha256File(a));
    const v = validateImage(b, { buildId: BUILD, ramBytes: 32 << 20 });
    expect(v.pfns).toEqual(pfns);
  });
});

/** A durable writer over `pages` pages and the data for them (random, incompressible); through the page cache unless `directIo`. */
function durableWriter(pages: number, directIo = false): { dev: SwapDevice; writer: ImageWriter; data: Uint8Array; path: string } {
  const path = tempSwapPath('writeback');
  const dev = SwapDevice.ensure(path, (pages + 64) * 4096);
  const pfns = Uint32Array.from({ length: pages }, (_, i) => 300 + i);
  const writer = new ImageWriter(dev, { pfns, buildId: BUILD, ramBytes: 512 << 20, frameCount: 131072, strategy: 'test', context: { address: 0x1000, bytes: new Uint8Array(CONTEXT_BYTES) }, directIo });
  return { dev, writer, data: randomFillSync(new Uint8Array(pages * 4096)), path };
}

/** A fresh 1 MiB swap device, and random bytes in page-aligned memory (as guest RAM is) of this many 64 KiB wasm pages. */
function directScratch(label: string, wasmPages: number): { dev: SwapDevice; memory: Uint8Array } {
  const dev = SwapDevice.create(tempSwapPath(label), 1 << 20);
  const memory = new Uint8Array(new WebAssembly.Memory({ initial: wasmPages }).buffer);
  randomFillSync(memory);
  return { dev, memory };
}

describe('ImageWriter.writeRuns, scattered', () => {
  it('gathers pages scattered in memory into the same file write() writes', async () => {
    const n = 1500;
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + 2 * i);
    const data = randomFillSync(new Uint8Array(n * 4096));
    const a = await referenceFile(data, pfns);
    // The same pages as runs of 1, 2, 3, ... pages, each copied to its own buffer.
    const parts: Uint8Array[] = [];
    for (let at = 0, len = 1; at < n; at += len, len++) parts.push(data.slice(at * 4096, Math.min(n, at + len) * 4096));
    const b = tempSwapPath('runs');
    const dev = SwapDevice.ensure(b, 64 << 20);
    const w = testWriter(dev, pfns);
    await w.writeRuns(0, parts.slice(0, 20));
    const first = parts.slice(0, 20).reduce((k, p) => k + p.length / 4096, 0);
    await w.writeRuns(first, parts.slice(20));
    await w.commit();
    dev.close();
    expect(sha256File(b)).toBe(sha256File(a));
  });

  it('fill produces each piece just before it is written: after the writes of the pieces before it were submitted, at most three of them unfinished', async () => {
    const n = 3000; // ~11.7 MiB: pieces of 2 MiB, and parts that split some of them
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + i);
    const data = randomFillSync(new Uint8Array(n * 4096));
    const a = await referenceFile(data, pfns);
    const b = tempSwapPath('fill');
    const dev = SwapDevice.ensure(b, 64 << 20);
    const w = testWriter(dev, pfns, { directIo: false });
    let submitted = 0;
    let finished = 0;
    const writev = dev.writevAtAsync.bind(dev);
    vi.spyOn(dev, 'writevAtAsync').mockImplementation((parts, offset) => {
      submitted++;
      return writev(parts, offset).then(() => void finished++);
    });
    // Parts of 700 pages (2.7 MiB), empty until fill copies their bytes in.
    const starts: number[] = [];
    const parts: Uint8Array[] = [];
    for (let at = 0; at < n; at += 700) {
      starts.push(at * 4096);
      parts.push(new Uint8Array(Math.min(700, n - at) * 4096));
    }
    const seen: Array<{ part: number; offset: number; bytes: number; submitted: number; unfinished: number }> = [];
    await w.writeRuns(0, parts, {
      fill: (piece, part, offset) => {
        seen.push({ part, offset, bytes: piece.length, submitted, unfinished: submitted - finished });
        piece.set(data.subarray(starts[part]! + offset, starts[part]! + offset + piece.length));
      },
    });
    await w.commit();
    dev.close();
    expect(sha256File(b)).toBe(sha256File(a));
    // Every byte of every part was filled once, in order, in pieces of at most 2 MiB.
    let part = 0;
    let offset = 0;
    for (const s of seen) {
      if (offset === parts[part]!.length) {
        part++;
        offset = 0;
      }
      expect([s.part, s.offset]).toEqual([part, offset]);
      expect(s.bytes).toBeLessThanOrEqual(2 << 20);
      offset += s.bytes;
    }
    expect([part, offset]).toEqual([parts.length - 1, parts.at(-1)!.length]);
    // Pieces are gathered into 2 MiB writes: the piece that starts the k-th 2 MiB of the
    // image is filled after k writes were submitted, with no more than three unfinished.
    let at = 0;
    for (const s of seen) {
      if (at % (2 << 20) === 0) expect(s.submitted).toBe(at / (2 << 20));
      expect(s.unfinished).toBeLessThanOrEqual(3);
      at += s.bytes;
    }
  });

  it('a fill that throws fails the write and the writer: no image signature', async () => {
    const { dev, writer } = durableWriter(2048);
    const parts = [new Uint8Array(2048 * 4096)];
    let calls = 0;
    await expect(
      writer.writeRuns(0, parts, {
        fill: () => {
          if (++calls === 3) throw new Error('the copy went wrong');
        },
      }),
    ).rejects.toThrow('the copy went wrong');
    await expect(writer.commit()).rejects.toThrow();
    expect(dev.readSignature().kind).toBe('swap');
    dev.close();
  });

  it('refuses parts that are not whole pages, or that run past the image, before writing anything', async () => {
    const dev = SwapDevice.ensure(tempSwapPath('bad'), 1 << 20);
    const w = testWriter(dev, Uint32Array.of(1, 2));
    await expect(w.writeRuns(0, [new Uint8Array(100)])).rejects.toThrow('writeRuns: 100 bytes is not a whole number of 4096-byte pages');
    await expect(w.writeRuns(1, [new Uint8Array(8192)])).rejects.toThrow('writeRuns: pages 1..2 are outside the image (2 pages)');
    expect(w.missingPages).toBe(2);
    dev.close();
  });
});

describe('SwapDevice.writeDirectAsync', () => {
  it('writes O_DIRECT from page-aligned memory, and through the page cache from memory that is not', async () => {
    const { dev, memory } = directScratch('odirect', 1);
    expect(await dev.writeDirectAsync(memory.subarray(4096, 3 * 4096), 8192)).toBe('direct');
    // One byte off the page: O_DIRECT refuses the address (EINVAL); the data still arrives.
    expect(await dev.writeDirectAsync(memory.subarray(4097, 4097 + 4096), 3 * 4096 + 4096)).toBe('buffered');
    const back = new Uint8Array(3 * 4096);
    dev.readAt(back, 8192);
    dev.close();
    expect(Buffer.from(back.subarray(0, 8192)).equals(Buffer.from(memory.subarray(4096, 3 * 4096)))).toBe(true);
    expect(Buffer.from(back.subarray(8192)).equals(Buffer.from(memory.subarray(4097, 4097 + 4096)))).toBe(true);
  });
});

describe('O_DIRECT writes of long runs', () => {
  it('SwapDevice.writevDirectAsync gathers page-aligned parts O_DIRECT, and parts that are not through the page cache', async () => {
    const { dev, memory } = directScratch('odirectv', 2);
    const aligned = [memory.subarray(8192, 3 * 4096), memory.subarray(0, 4096), memory.subarray(10 * 4096, 12 * 4096)];
    expect(await dev.writevDirectAsync(aligned, 4096)).toBe('direct');
    const unaligned = [memory.subarray(4096, 2 * 4096), memory.subarray(20 * 4096 + 512 + 1, 20 * 4096 + 512 + 1 + 4096)];
    expect(await dev.writevDirectAsync(unaligned, 16 * 4096)).toBe('buffered');
    const back = new Uint8Array(4 * 4096);
    dev.readAt(back, 4096);
    expect(Buffer.from(back).equals(Buffer.concat(aligned))).toBe(true);
    const back2 = new Uint8Array(2 * 4096);
    dev.readAt(back2, 16 * 4096);
    expect(Buffer.from(back2).equals(Buffer.concat(unaligned))).toBe(true);
    dev.close();
  });

  it('the writer sends runs of guest-like memory O_DIRECT, with no background writeback, and writes the same file as through the page cache', async () => {
    const pages = 10_500; // 41 MiB: one background writeback through the page cache
    const memory = new Uint8Array(new WebAssembly.Memory({ initial: (pages * 4096) / 65536 + 1 }).buffer);
    randomFillSync(memory);
    const data = memory.subarray(0, pages * 4096);
    const results: Array<{ sha: string; syncs: number; direct: number }> = [];
    for (const directIo of [true, false]) {
      const { dev, writer, path } = durableWriter(pages, directIo);
      const syncs = vi.spyOn(dev, 'syncDataAsync');
      await writer.writeRuns(0, [data.subarray(0, 4000 * 4096), data.subarray(4000 * 4096)]);
      const backgroundSyncs = syncs.mock.calls.length;
      const done = await writer.commit();
      dev.close();
      results.push({ sha: sha256File(path), syncs: backgroundSyncs, direct: done.directPageBytes });
    }
    expect(results[0]!.sha).toBe(results[1]!.sha);
    expect(results[0]).toMatchObject({ syncs: 0, direct: pages * 4096 });
    expect(results[1]).toMatchObject({ syncs: 1, direct: 0 });
  });
});

describe('ImageWriter background writeback', () => {
  it('starts an fdatasync every 32 MiB while writing; commit syncs the rest at once, beside the last one, and waits for both', async () => {
    const { dev, writer, data, path } = durableWriter(20_000); // 78 MiB
    const metadataOffset = imageExtent(20_000).metadataOffset;
    // The writer starts a writeback only when the last one is done: the first finishes at
    // once (a real disk may take longer than the next 32 MiB), the others when released.
    const releases: Array<() => void> = [];
    const events: string[] = [];
    const syncs = vi.spyOn(dev, 'syncDataAsync').mockImplementation(() => {
      events.push(`sync ${syncs.mock.calls.length}`);
      return syncs.mock.calls.length === 1 ? Promise.resolve() : new Promise<void>((resolve) => releases.push(resolve));
    });
    const realWrite = dev.writeAt.bind(dev);
    vi.spyOn(dev, 'writeAt').mockImplementation((bytes, offset) => {
      if (offset === metadataOffset) events.push('metadata');
      realWrite(bytes, offset);
    });
    await writer.writeRuns(0, [data]);
    expect(syncs).toHaveBeenCalledTimes(2);
    let committed = false;
    const commit = writer.commit().then(() => (committed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The last 14 MiB went to the disk at once, while the second writeback still runs;
    // nothing of the metadata, header or signature is written until both are done.
    expect(events).toEqual(['sync 1', 'sync 2', 'sync 3']);
    expect(committed).toBe(false);
    expect(dev.readSignature().kind).toBe('swap');
    releases[0]!();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(committed).toBe(false);
    releases[1]!();
    await commit;
    expect(events).toEqual(['sync 1', 'sync 2', 'sync 3', 'metadata']);
    expect(dev.readSignature().kind).toBe('image');
    dev.close();
    expect(validateImage(path, { buildId: BUILD, ramBytes: 512 << 20 }).pfns.length).toBe(20_000);
  });

  it('a failed background fdatasync fails the commit: no image signature is written', async () => {
    const { dev, writer, data } = durableWriter(10_500);
    vi.spyOn(dev, 'syncDataAsync').mockRejectedValue(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await writer.writeRuns(0, [data]);
    await expect(writer.commit()).rejects.toThrow(/EIO/);
    expect(dev.readSignature().kind).toBe('swap');
    dev.close();
  });

  it('a failed fdatasync of the last stretch fails the commit: no image signature, and the writer is closed', async () => {
    const { dev, writer, data } = durableWriter(4_000); // 16 MiB: no writeback while writing, one in commit
    const syncs = vi.spyOn(dev, 'syncDataAsync').mockRejectedValue(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await writer.writeRuns(0, [data]);
    expect(syncs).not.toHaveBeenCalled();
    await expect(writer.commit()).rejects.toThrow(/EIO/);
    expect(syncs).toHaveBeenCalledTimes(1);
    expect(dev.readSignature().kind).toBe('swap');
    await expect(writer.commit()).rejects.toThrow(/closed after a failed write/);
    dev.close();
  });
});

describe('ImageWriter: stable writes, their CRCs taken at commit while the disk works', () => {
  it('write(..., { stable }) gives exactly the file write() gives', async () => {
    const n = 600;
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + i);
    const data = randomFillSync(new Uint8Array(n * 4096));
    const a = await referenceFile(data, pfns);
    const b = tempSwapPath('later');
    const dev = SwapDevice.ensure(b, 64 << 20);
    const w = testWriter(dev, pfns);
    // A long run (written from the buffer), then a short one (staged).
    w.write(0, data.subarray(0, 500 * 4096), { stable: true });
    w.write(500, data.subarray(500 * 4096), { stable: true });
    await w.commit();
    dev.close();
    expect(sha256File(b)).toBe(sha256File(a));
  });

  it('long runs go to the disk in the background (O_DIRECT from page-aligned memory) and give the same file', async () => {
    const n = 600;
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + i);
    // Guest RAM is a WebAssembly.Memory: page-aligned, as O_DIRECT wants.
    const memory = new Uint8Array(new WebAssembly.Memory({ initial: 64 }).buffer);
    const data = memory.subarray(4096, 4096 + n * 4096);
    randomFillSync(data);
    const a = await referenceFile(data, pfns);
    const b = tempSwapPath('direct');
    const dev = SwapDevice.ensure(b, 64 << 20);
    const how = vi.spyOn(dev, 'writeDirectAsync');
    const w = testWriter(dev, pfns, { durable: true });
    w.write(0, data, { stable: true });
    // A background write is running: the same pages cannot be written over it.
    expect(() => w.write(5, data.subarray(5 * 4096, 6 * 4096))).toThrow('page 5 is still being written in the background (a stable write): it cannot be written again before commit()');
    await w.commit();
    dev.close();
    expect(how).toHaveBeenCalledTimes(1); // 2.3 MiB: one chunk
    expect(await how.mock.results[0]!.value).toBe('direct');
    expect(sha256File(b)).toBe(sha256File(a));
  });

  it('stable data that changed before commit is never resumed: validation refuses the page (BAD_PAGE_CRC)', async () => {
    const path = tempSwapPath('unstable');
    const dev = SwapDevice.ensure(path, 1 << 20);
    const w = testWriter(dev, Uint32Array.of(1, 2, 3));
    const data = randomFillSync(new Uint8Array(3 * 4096));
    w.write(0, data, { stable: true });
    data[4096 + 100] = data[4096 + 100]! ^ 1; // broken promise: page 1 changes after it was written
    await w.commit();
    dev.close();
    expect(() => validateImage(path, { buildId: BUILD, ramBytes: 32 << 20 })).toThrow(expect.objectContaining({ code: 'BAD_PAGE_CRC', index: 1 }));
  });

  it('commit starts one background fdatasync for stable writes through the page cache and writes the signature only after it', async () => {
    const { dev, writer, data } = durableWriter(300);
    let release!: () => void;
    const syncs = vi.spyOn(dev, 'syncDataAsync').mockImplementation(() => new Promise<void>((resolve) => (release = resolve)));
    writer.write(0, data, { stable: true });
    let committed = false;
    const commit = writer.commit().then(() => (committed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(syncs).toHaveBeenCalledTimes(1);
    expect(committed).toBe(false);
    expect(dev.readSignature().kind).toBe('swap');
    release();
    await commit;
    expect(dev.readSignature().kind).toBe('image');
    dev.close();
  });

  it('a wrong CRC given is caught by validation (BAD_PAGE_CRC), never resumed', async () => {
    const path = tempSwapPath('wrongcrc');
    const dev = SwapDevice.ensure(path, 1 << 20);
    const w = testWriter(dev, Uint32Array.of(1, 2));
    const data = randomFillSync(new Uint8Array(2 * 4096));
    w.write(0, data, { crcs: Uint32Array.of(crc32(data.subarray(0, 4096)), crc32(data.subarray(0, 4096))) });
    await w.commit();
    dev.close();
    expect(() => validateImage(path, { buildId: BUILD, ramBytes: 32 << 20 })).toThrow(expect.objectContaining({ code: 'BAD_PAGE_CRC', index: 1 }));
  });
});

describe('crc32', () => {
  it('the fast (PCLMULQDQ) implementation is the one in use here, and equals zlib on every length and start value', () => {
    expect(CRC32_IMPLEMENTATION).toBe('pclmul');
    const data = randomFillSync(new Uint8Array(70_000));
    for (const len of [0, 1, 3, 15, 16, 63, 64, 65, 255, 4096, 4097, 65_536, 70_000]) {
      for (const initial of [0, 1, 0xffffffff, 0xcbf43926]) {
        expect(crc32(data.subarray(0, len), initial)).toBe(crc32Portable(data.subarray(0, len), initial));
      }
    }
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('crc32Pages takes a run of pages in one native call here, and gives each page the CRC crc32() gives it', () => {
    expect(CRC32_PAGES_IMPLEMENTATION).toBe('native');
    const data = randomFillSync(new Uint8Array(64 * 4096));
    data.fill(0, 5 * 4096, 6 * 4096); // a zero page
    data.fill(0xff, 9 * 4096, 10 * 4096);
    const out = new Uint32Array(70).fill(7);
    crc32Pages(data.subarray(4096), out, 3); // pages 1..63 of data into out[3..65]
    const expected = Array.from({ length: 63 }, (_, i) => crc32(data.subarray((i + 1) * 4096, (i + 2) * 4096)));
    expect(Array.from(out.subarray(3, 66))).toEqual(expected);
    expect([...out.subarray(0, 3), ...out.subarray(66)]).toEqual([7, 7, 7, 7, 7, 7, 7]); // nothing outside
    const portable = new Uint32Array(63);
    crc32PagesPortable(data.subarray(4096), portable, 0);
    expect(Array.from(portable)).toEqual(expected);
  });

  it('crc32Pages refuses a partial page or too small an output, in TypeScript and in the native module', () => {
    const out = new Uint32Array(2);
    expect(() => crc32Pages(new Uint8Array(4095), out, 0)).toThrow('crc32Pages: 4095 bytes is not a whole number of 4096-byte pages');
    expect(() => crc32Pages(new Uint8Array(3 * 4096), out, 0)).toThrow('crc32Pages: 3 CRCs from index 0 do not fit in 2');
    expect(() => crc32Pages(new Uint8Array(4096), out, 2)).toThrow('crc32Pages: 1 CRCs from index 2 do not fit in 2');
    const native = hiberlabNative();
    if (native instanceof Error) throw native;
    expect(() => native.crc32Pages(new Uint8Array(4095), out, 0)).toThrow(RangeError);
    expect(() => native.crc32Pages(new Uint8Array(3 * 4096), out, 0)).toThrow(RangeError);
    expect(() => native.crc32Pages(new Uint8Array(4096), out, 1.5)).toThrow(RangeError);
    expect(() => native.crc32Pages(new Uint16Array(2048) as unknown as Uint8Array, out, 0)).toThrow(TypeError);
    expect(() => native.crc32Pages(new Uint8Array(4096), new Int32Array(2) as unknown as Uint32Array, 0)).toThrow(TypeError);
  });
});
