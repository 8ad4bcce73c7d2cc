/**
 * Shared pieces of the integration tests: the guest image, temporary swap devices,
 * file hashes.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import zlib from 'node:zlib';
import tmp from 'tmp';
import { afterAll, expect } from 'vitest';
import type { CycleReport } from '../src/cycle.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import type { GuestImageRef } from '../src/machine/machine.ts';
import { HEADER_LAYOUT, HEADER_OFFSET, HEADER_SIZE, PAGE_SIZE, SIGNATURE_LAYOUT } from '../src/image/layout.ts';

export const MiB = 1024 * 1024;

let image: GuestImageRef | undefined;
export function guestImage(): GuestImageRef {
  image ??= loadGuestImage();
  return image;
}

const made: string[] = [];
/** A fresh temporary path for a swap device, removed after the test file. */
export function tempSwapPath(label = 'swap'): string {
  const p = tmp.tmpNameSync({ prefix: `hiberlab-test-${label}-`, postfix: '.swap' });
  made.push(p);
  return p;
}

afterAll(() => {
  for (const p of made.splice(0)) rmSync(p, { force: true });
});

/**
 * Rewrites an image's header and metadata through `edit`, then makes every CRC
 * consistent again (metadata CRC, header CRC, and the header CRC in the signature): a
 * well-formed image that lies, to reach the checks behind the CRCs. For images that lie
 * where their offsets say (no swap map).
 */
export function forge(file: string, edit: (header: DataView, metadata: DataView) => void): void {
  const fd = openSync(file, 'r+');
  try {
    const read = (offset: number, length: number) => {
      const out = new Uint8Array(length);
      readSync(fd, out, 0, length, offset);
      return out;
    };
    const header = read(HEADER_OFFSET, PAGE_SIZE);
    const hv = new DataView(header.buffer);
    const f = HEADER_LAYOUT.at;
    const metadataOffset = hv.getUint32(f.metadata_offset.offset, true);
    const metadata = read(metadataOffset, hv.getUint32(f.metadata_bytes.offset, true));
    edit(hv, new DataView(metadata.buffer));
    hv.setUint32(f.metadata_crc.offset, zlib.crc32(metadata), true);
    hv.setUint32(f.header_crc.offset, 0, true);
    const headerCrc = zlib.crc32(header.subarray(0, HEADER_SIZE));
    hv.setUint32(f.header_crc.offset, headerCrc, true);
    writeSync(fd, metadata, 0, metadata.length, metadataOffset);
    writeSync(fd, header, 0, header.length, HEADER_OFFSET);
    const sigCrc = new Uint8Array(4);
    new DataView(sigCrc.buffer).setUint32(0, headerCrc, true);
    writeSync(fd, sigCrc, 0, 4, SIGNATURE_LAYOUT.at.header_crc.offset);
  } finally {
    closeSync(fd);
  }
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * A cycle passed, and every rule of the oracle says so on its own: the image held
 * exactly the frames in use at the atomic point, every saved page equals the oracle's
 * expected bytes, the CPU context came back, every workload verified its data.
 */
export function expectPass(r: CycleReport): void {
  expect(r.failures).toEqual([]);
  expect(r.verdict).toBe('pass');
  expect(r.resumeStatus).toBe('resumed');
  const o = r.oracle;
  expect(o.against).toBe('oracle');
  expect(o.frames!.missingPages).toEqual([]);
  expect(o.frames!.extraPages).toEqual([]);
  expect(o.memory!.differingPages).toEqual([]);
  expect(o.cpu!.differences).toEqual([]);
  expect(o.cpu!.fieldsCompared.length).toBe(22);
  expect(r.verify.length).toBe(o.tasks.expected);
  for (const v of r.verify) expect(v.badWords).toBe(0);
}
