/**
 * The swap map (image format 3 on): an image whose sectors are scattered over the device, as
 * a fragmented swap file's blocks are, is read through the extents its header records,
 * by the validation (both threads of the page scan), inspect and every restore; a map
 * that could read outside the image, or one sector twice, is refused before anything is
 * read through it.
 */
import { closeSync, copyFileSync, openSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hibernate, resume } from '../src/cycle.ts';
import { ImageError, inspectImage, validateImage } from '../src/image/index.ts';
import { HEADER_LAYOUT, HEADER_OFFSET, headerCrcOf, SIGNATURE_LAYOUT } from '../src/image/layout.ts';
import { RESTORE_STRATEGIES } from '../src/strategies.ts';
import { guestImage, MiB, tempSwapPath } from './helpers.ts';

const SECTOR = 512;

/** Rewrites the image on `path` scattered: `extents` ([first, sectors] pairs, logical order), its header's swap map set to them. */
function scatter(path: string, extents: number[]): void {
  const fd = openSync(path, 'r+');
  try {
    const total = extents.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0) * SECTOR;
    const logical = new Uint8Array(total);
    readSync(fd, logical, 0, total, 0);
    let at = 0;
    for (let i = 0; i < extents.length; i += 2) {
      writeSync(fd, logical, at, extents[i + 1]! * SECTOR, extents[i]! * SECTOR);
      at += extents[i + 1]! * SECTOR;
    }
    setMap(fd, extents);
  } finally {
    closeSync(fd);
  }
}

/** Writes `extents` into the header's swap map and fixes the header CRC and the signature's copy of it. */
function setMap(fd: number, extents: number[], count = extents.length / 2): void {
  const header = new Uint8Array(4096);
  readSync(fd, header, 0, 4096, HEADER_OFFSET);
  const view = new DataView(header.buffer);
  const f = HEADER_LAYOUT.at;
  view.setUint32(f.extent_count.offset, count, true);
  header.fill(0, f.extents.offset, f.extents.offset + f.extents.size);
  extents.forEach((v, i) => view.setUint32(f.extents.offset + 4 * i, v, true));
  const crc = headerCrcOf(header);
  view.setUint32(f.header_crc.offset, crc, true);
  writeSync(fd, header, 0, 4096, HEADER_OFFSET);
  const sig = new Uint8Array(4);
  new DataView(sig.buffer).setUint32(0, crc, true);
  writeSync(fd, sig, 0, 4, SIGNATURE_LAYOUT.at.header_crc.offset);
}

/** The image's logical sectors after the header in `k` extents, placed in reverse order from sector 16 on. */
function reversed(imageSectors: number, k: number): number[] {
  const rest = imageSectors - 16;
  const size = Math.ceil(rest / k);
  const chunks = Array.from({ length: k }, (_, i) => Math.min(size, rest - i * size)).filter((n) => n > 0);
  const out = [0, 16];
  let physicalEnd = imageSectors;
  for (const n of chunks) {
    physicalEnd -= n;
    out.push(physicalEnd, n);
  }
  return out;
}

describe('the swap map: an image scattered over its device', () => {
  it('validates, inspects and resumes through every restore (but reserved, which needs a region), the oracle passing, after its sectors were scattered in 37 extents', async () => {
    const path = tempSwapPath('scattered');
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500,stream:2M,cache:2M', seed: 51, image: guestImage(), imagePath: path, warmupMs: 30 });
    const before = validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB });
    const sectors = before.imageBytes / SECTOR;
    const map = reversed(sectors, 36);
    scatter(path, map);
    // Laid out contiguously the data is now garbage: read through the map, every page is back.
    const after = validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB });
    expect(Array.from(after.pfns)).toEqual(Array.from(before.pfns));
    expect(Array.from(after.header.extents)).toEqual(map);
    const inspected = inspectImage(path);
    expect(inspected.resumable).toBe(true);
    expect(inspected.header!.extents.length).toBe(37);
    for (const restore of [...RESTORE_STRATEGIES.keys()].filter((n) => n !== 'reserved')) {
      const copy = tempSwapPath(`scattered-${restore}`);
      copyFileSync(path, copy);
      const r = await resume({ imagePath: copy, oracle: h.oracle, image: guestImage(), restore, verifyReportsExpected: h.verifyReportsExpected });
      expect(r.check!.failures, restore).toEqual([]);
      expect(r.check!.verdict).toBe('pass');
    }
  });

  it('refuses a swap map that does not begin with the header, overlaps itself, falls short of the image or leaves the file', async () => {
    const path = tempSwapPath('bad-map');
    await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500', seed: 52, image: guestImage(), imagePath: path, warmupMs: 30, oracle: false });
    const sectors = validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB }).imageBytes / SECTOR;
    const expectRefused = (extents: number[], message: RegExp, count?: number) => {
      const fd = openSync(path, 'r+');
      setMap(fd, extents, count);
      closeSync(fd);
      let err: unknown;
      try {
        validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ImageError);
      expect((err as ImageError).message).toMatch(message);
    };
    expectRefused([16, sectors], /first extent \(sector 16, \d+ sectors\) does not begin at sector 0 and cover the header/);
    expectRefused([0, 16, 8, sectors - 16], /extents 0 and 1 of its swap map on the same sectors \(from sector 8\)/);
    expectRefused([0, 16, 100, 10], /a swap map of \d+ bytes for an image of \d+/);
    expectRefused([0, 16, 1 << 30, sectors], /extent 1 of the image's swap map ends at byte \d+ but the file has/);
    expectRefused([0, 16, 16, 0, 32, sectors], /an empty extent 1 in its swap map/);
    expectRefused([0, sectors], /a swap map of 257 extents \(at most 256\)/, 257);
    // The map put back to none: the image is whole again.
    const fd = openSync(path, 'r+');
    setMap(fd, []);
    closeSync(fd);
    expect(validateImage(path, { buildId: guestImage().buildId, ramBytes: 32 * MiB }).pfns.length).toBeGreaterThan(0);
  });
});
