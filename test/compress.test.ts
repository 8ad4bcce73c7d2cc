/**
 * The suspend module's optional compression: LZ4 blocks packed on the disk (image
 * compression LZ4), read back through the same validation and reader as every image.
 */
import { closeSync, copyFileSync, openSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hibernate, resume } from '../src/cycle.ts';
import { CrcThread, inspectImage, SwapDevice, validateImage } from '../src/image/index.ts';
import { expandPages, lz4DecodeBlock } from '../src/image/page-scan.mjs';
import { RESTORE_STRATEGIES } from '../src/strategies.ts';
import { forge, guestImage, MiB, sha256File, tempSwapPath } from './helpers.ts';

const PAGE = 4096;

/** A length beyond a token's 15, as LZ4 writes it. */
const ext = (rest: number): number[] => [...Array<number>(Math.floor(rest / 255)).fill(255), rest % 255];

describe('LZ4 block decoding', () => {
  it('decodes literals, and matches that overlap what they produce', () => {
    const literals = Uint8Array.from({ length: PAGE }, (_, i) => (i * 7) & 0xff);
    const out = new Uint8Array(PAGE);
    expect(lz4DecodeBlock(Uint8Array.from([0xf0, ...ext(PAGE - 15), ...literals]), out)).toBe(true);
    expect(out).toEqual(literals);
    // "ab", then a match 2 back of 4089 bytes (overlapping), then 5 literals.
    const block = Uint8Array.from([0x2f, 0x61, 0x62, 2, 0, ...ext(PAGE - 2 - 5 - 4 - 15), 0x50, 1, 2, 3, 4, 5]);
    expect(lz4DecodeBlock(block, out)).toBe(true);
    expect(out.subarray(0, 6)).toEqual(Uint8Array.from([0x61, 0x62, 0x61, 0x62, 0x61, 0x62]));
    expect(out[PAGE - 6]).toBe(out[PAGE - 8]);
    expect(out.subarray(PAGE - 5)).toEqual(Uint8Array.from([1, 2, 3, 4, 5]));
  });

  it('refuses a malformed block without reading or writing outside its buffers', () => {
    const out = new Uint8Array(PAGE);
    const tail = [0x50, 1, 2, 3, 4, 5];
    const good = [0x1f, 0x61, 1, 0, ...ext(PAGE - 1 - 5 - 4 - 15), ...tail];
    expect(lz4DecodeBlock(Uint8Array.from(good), out)).toBe(true);
    expect(lz4DecodeBlock(Uint8Array.from([0x1f, 0x61, 0, 0, ...ext(PAGE - 1 - 5 - 4 - 15), ...tail]), out)).toBe(false); // distance 0
    expect(lz4DecodeBlock(Uint8Array.from([0x1f, 0x61, 2, 0, ...ext(PAGE - 1 - 5 - 4 - 15), ...tail]), out)).toBe(false); // before the output's start
    expect(lz4DecodeBlock(Uint8Array.from([0x1f, 0x61, 1]), out)).toBe(false); // cut inside the distance
    expect(lz4DecodeBlock(Uint8Array.from([0xf0, 255]), out)).toBe(false); // cut inside a length
    expect(lz4DecodeBlock(Uint8Array.from([0x30, 1, 2]), out)).toBe(false); // literals past the end of the block
    expect(lz4DecodeBlock(Uint8Array.from(good.slice(0, -1)), out)).toBe(false); // cut inside the last literals
    expect(lz4DecodeBlock(Uint8Array.of(0x50, 1, 2, 3, 4, 5), out)).toBe(false); // well formed, but 5 bytes of a 4096-byte page
    expect(lz4DecodeBlock(Uint8Array.from([0x1f, 0x61, 1, 0, ...ext(PAGE), ...tail]), out)).toBe(false); // past the page
  });

  it('expands stored pages: whole ones as they are, a broken block marked and zeroed', () => {
    const whole = Uint8Array.from({ length: PAGE }, (_, i) => i & 0xff);
    const zeros = Uint8Array.from([0x1f, 0, 1, 0, ...ext(PAGE - 1 - 5 - 4 - 15), 0x50, 0, 0, 0, 0, 0]);
    const stored = Uint8Array.from([...whole, ...zeros, 0x1f, 0x61, 0, 0]);
    const out = new Uint8Array(3 * PAGE).fill(0xee);
    const broken = expandPages(stored, Uint32Array.of(PAGE, zeros.length, 4), 0, 3, out);
    expect(Array.from(broken)).toEqual([0, 0, 1]);
    expect(out.subarray(0, PAGE)).toEqual(whole);
    expect(out.subarray(PAGE).every((b) => b === 0)).toBe(true);
  });
});

describe('suspend-module --compress: LZ4 into scratch, pages packed on the disk', () => {
  it('writes a smaller image that the oracle passes and every restore strategy resumes', async () => {
    const path = tempSwapPath('smz');
    const workload = 'churn:2M@500,stream:4M,cache:4M';
    const h = await hibernate({ ramBytes: 32 * MiB, workload, seed: 21, save: 'suspend-module', saveOptions: { compress: true }, image: guestImage(), imagePath: path, warmupMs: 30, reserveBytes: 8 * MiB });
    const s = h.save.stats as Record<string, number>;
    expect(s.storedBytes).toBeLessThan(s.pagesWritten! * PAGE);
    expect(h.save.pageBytesWritten).toBe(s.pagesWritten! * PAGE); // "Wrote N kbytes" counts pages, as Linux does
    expect(s.storedPercent).toBeLessThan(100);
    const inspected = inspectImage(path);
    expect(inspected.resumable).toBe(true);
    expect(inspected.header!.compression).toBe(1);
    expect(inspected.header!.dataBytes).toBe(s.storedBytes);
    const image = validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB });
    const sizes = image.packing!.sizes;
    expect(sizes.some((x) => x < PAGE)).toBe(true); // compressed pages ...
    expect(sizes.some((x) => x === PAGE)).toBe(true); // ... and pages LZ4 could not shrink (the workloads' hashed words), stored whole
    for (const restore of RESTORE_STRATEGIES.keys()) {
      const copy = tempSwapPath(`smz-${restore}`);
      copyFileSync(path, copy);
      // The reserved restore's boot kernel lives in the region the hibernated kernel kept.
      const reserveBytes = restore === 'reserved' ? 8 * MiB : undefined;
      const r = await resume({ imagePath: copy, oracle: h.oracle, image: guestImage(), restore, reserveBytes, verifyReportsExpected: h.verifyReportsExpected });
      expect(r.reason, restore).toBeUndefined();
      expect(r.check!.failures, restore).toEqual([]);
      expect(r.check!.verdict, restore).toBe('pass');
    }
    // Stored sizes that lie, with every CRC made consistent: refused, the file as it was.
    const n = image.pfns.length;
    const lying = async (label: string, edit: (m: DataView) => void) => {
      const copy = tempSwapPath(`smz-${label}`);
      copyFileSync(path, copy);
      forge(copy, (_h, m) => edit(m));
      const before = sha256File(copy);
      const r = await resume({ imagePath: copy, ramBytes: 32 * MiB, image: guestImage(), proveUntouched: true });
      expect(sha256File(copy)).toBe(before);
      expect(r.guestMemoryUntouched).toBe(true);
      return r;
    };
    const sizeAt = (i: number) => (2 * n + i) * 4;
    const zero = await lying('size0', (m) => m.setUint32(sizeAt(3), 0, true));
    expect(zero.errorCode).toBe('BAD_METADATA');
    expect(zero.reason).toMatch(/entry 3 of the image metadata of .* gives page 3 a stored size of 0 bytes, outside 1\.\.4096/);
    const short = await lying('short', (m) => m.setUint32(sizeAt(3), m.getUint32(sizeAt(3), true) - 1, true));
    expect(short.errorCode).toBe('BAD_METADATA');
    expect(short.reason).toMatch(new RegExp(`the stored sizes in the image metadata of .* add up to ${s.storedBytes! - 1} bytes, but data_bytes is ${s.storedBytes}`));
    // The same total, one byte moved from a compressed page to the next: two blocks that do not decode.
    const at = sizes.findIndex((x, i) => x < PAGE && sizes[i + 1]! < PAGE);
    expect(at).toBeGreaterThanOrEqual(0);
    const moved = await lying('moved', (m) => {
      m.setUint32(sizeAt(at), sizes[at]! - 1, true);
      m.setUint32(sizeAt(at + 1), sizes[at + 1]! + 1, true);
    });
    expect(moved.errorCode).toBe('BAD_PAGE_CRC');
    expect(moved.reason).toMatch(new RegExp(`^page ${at} \\(PFN 0x[0-9a-f]+\\) at offset ${image.dataOffset + image.packing!.offsets[at]!} of .* is corrupt: stored CRC 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}; 2 bad pages in all$`));
  });

  it('with a fragmented sector list too; a flipped byte in a compressed page is refused before any guest memory is touched', async () => {
    const path = tempSwapPath('smz-frag');
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500,stream:2M,cache:2M', seed: 22, save: 'suspend-module', saveOptions: { compress: true, fragments: 8 }, image: guestImage(), imagePath: path, warmupMs: 30 });
    expect((h.save.stats as Record<string, number>).extents).toBe(9);
    const good = tempSwapPath('smz-frag-good');
    copyFileSync(path, good);
    const image = validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB });
    const { sizes, offsets } = image.packing!;
    const index = sizes.findIndex((x) => x < PAGE / 2);
    expect(index).toBeGreaterThanOrEqual(0);
    // The byte in the middle of that page's block, where the swap map puts it on the device.
    const logical = image.dataOffset + offsets[index]! + Math.floor(sizes[index]! / 2);
    const e = image.header.extents;
    let physical = -1;
    for (let i = 0, base = 0; i < e.length; base += e[i + 1]! * 512, i += 2) {
      if (logical < base + e[i + 1]! * 512) {
        physical = e[i]! * 512 + (logical - base);
        break;
      }
    }
    const fd = openSync(path, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, physical);
    b[0]! ^= 0x5a;
    writeSync(fd, b, 0, 1, physical);
    closeSync(fd);
    const before = sha256File(path);
    const r = await resume({ imagePath: path, ramBytes: 32 * MiB, image: guestImage(), proveUntouched: true });
    expect(sha256File(path)).toBe(before);
    expect(r.status).toBe('refused');
    expect(r.errorCode).toBe('BAD_PAGE_CRC');
    expect(r.reason).toContain(`page ${index} (PFN 0x${image.pfns[index]!.toString(16)}) at offset ${image.dataOffset + offsets[index]!} `);
    expect(r.guestMemoryUntouched).toBe(true);
    // The CRC thread alone, given every chunk of the corrupt image: it decodes through the swap map and finds that page.
    const thread = CrcThread.start();
    try {
      const dev = SwapDevice.open(path);
      dev.mapImage(image.header.extents);
      const counter = new SharedArrayBuffer(4);
      const scan = await thread.run({ fd: dev.fileDescriptor, dataOffset: image.dataOffset, pageCount: image.pfns.length, chunkPages: 16, crcs: image.crcs, extents: dev.imageMap, ...image.packing!, counter });
      dev.close();
      expect(scan).toMatchObject({ chunks: Math.ceil(image.pfns.length / 16), badPages: 1, first: { index, expected: image.crcs[index] } });
    } finally {
      await thread.close();
    }
    const ok = await resume({ imagePath: good, oracle: h.oracle, image: guestImage(), verifyReportsExpected: h.verifyReportsExpected });
    expect(ok.check!.verdict).toBe('pass');
  });
});
