import { copyFileSync, openSync, readSync, writeSync, closeSync, truncateSync, statSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { hibernate, resume } from '../src/cycle.ts';
import { CrcThread, HEADER_OFFSET, resetSignature, SwapDevice, validateImage } from '../src/image/index.ts';
import { Guest } from '../src/machine/guest.ts';
import { guestImage, MiB, sha256File, tempSwapPath } from './helpers.ts';

let good: string;
let dataOffset: number;

function patchByte(path: string, offset: number, xor: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0]! ^= xor;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

function variant(label: string, change: (path: string) => void): string {
  const p = tempSwapPath(label);
  copyFileSync(good, p);
  change(p);
  return p;
}

async function refused(path: string, ramBytes = 32 * MiB, image = guestImage()) {
  const before = sha256File(path);
  const r = await resume({ imagePath: path, ramBytes, image, proveUntouched: true });
  expect(sha256File(path)).toBe(before);
  return r;
}

beforeAll(async () => {
  good = tempSwapPath('good');
  await hibernate({ ramBytes: 32 * MiB, workload: 'churn:2M@1000', image: guestImage(), imagePath: good });
  dataOffset = validateImage(good, { buildId: guestImage().buildId, ramBytes: 32 * MiB }).dataOffset;
});

describe('a bad image is refused before any guest memory is touched, and the file is left as it was', () => {
  it('no signature: an empty swap device boots normally ("no-image")', async () => {
    const p = tempSwapPath('empty');
    SwapDevice.create(p, 8 * MiB).close();
    const r = await refused(p);
    expect(r.status).toBe('no-image');
    expect(r.errorCode).toBe('NO_SIGNATURE');
    expect(r.guestMemoryUntouched).toBe(true);
    expect(r.console).toMatch(/pm: ready/);
  });

  it('an image whose signature was reset is no image', async () => {
    const p = variant('reset', (x) => {
      const dev = SwapDevice.open(x, { writable: true });
      resetSignature(dev);
      dev.close();
    });
    const r = await refused(p);
    expect(r.status).toBe('no-image');
  });

  it('truncated image', async () => {
    const p = variant('trunc', (x) => truncateSync(x, dataOffset + 4096 * 10));
    const r = await refused(p);
    expect(r.status).toBe('refused');
    expect(r.errorCode).toBe('TRUNCATED');
    expect(r.reason).toMatch(/truncated/);
    expect(r.guestMemoryUntouched).toBe(true);
    expect(r.signatureReset).toBe(false);
  });

  it('one flipped byte in a page', async () => {
    const r = await refused(variant('page', (p) => patchByte(p, dataOffset + 4096 * 7 + 123, 0x40)));
    expect(r.errorCode).toBe('BAD_PAGE_CRC');
    expect(r.reason).toMatch(/page 7 \(PFN 0x[0-9a-f]+\)/);
    expect(r.guestMemoryUntouched).toBe(true);
  });

  it('a flipped header field', async () => {
    const r = await refused(variant('header', (p) => patchByte(p, HEADER_OFFSET + 40, 0x01)));
    expect(r.errorCode).toBe('BAD_HEADER_CRC');
    expect(r.guestMemoryUntouched).toBe(true);
  });

  it('wrong RAM size', async () => {
    const r = await refused(variant('ram', () => {}), 48 * MiB);
    expect(r.errorCode).toBe('WRONG_RAM_SIZE');
    expect(r.reason).toMatch(/32 MiB/);
    expect(r.reason).toMatch(/48 MiB/);
    expect(r.guestMemoryUntouched).toBe(true);
  });

  it('wrong build: a boot kernel built differently (one more byte in its ELF)', async () => {
    const base = guestImage();
    const elf = new Uint8Array(base.elf.length + 1);
    elf.set(base.elf);
    const { createHash } = await import('node:crypto');
    const other = { elf, buildId: createHash('sha256').update(elf).digest('hex') };
    const r = await refused(variant('build', () => {}), 32 * MiB, other);
    expect(r.errorCode).toBe('WRONG_BUILD');
    expect(r.reason).toContain(base.buildId.slice(0, 12));
    expect(r.guestMemoryUntouched).toBe(true);
  });

  it('a refused image leaves the boot kernel booting normally to READY', async () => {
    const r = await refused(variant('boot', (p) => patchByte(p, dataOffset + 5, 0x01)));
    expect(r.status).toBe('refused');
    expect(r.console).toMatch(/pm: ready, 0 workload tasks/);
  });

  it('an image is consumed by its resume: a second resume finds no image', async () => {
    const p = variant('twice', () => {});
    const first = await resume({ imagePath: p, ramBytes: 32 * MiB, image: guestImage() });
    expect(first.status).toBe('resumed');
    expect(first.signatureReset).toBe(true);
    const second = await resume({ imagePath: p, ramBytes: 32 * MiB, image: guestImage() });
    expect(second.status).toBe('no-image');
    expect(second.errorCode).toBe('NO_SIGNATURE');
    expect(statSync(p).size).toBe(statSync(good).size);
  });

  it('the page scan starts on the CRC thread before the boot kernel runs, and its chunks are reported', async () => {
    const p = variant('early', () => {});
    const run = vi.spyOn(CrcThread.prototype, 'run');
    let scansAtFirstConsoleLine: number | undefined;
    try {
      const r = await resume({
        imagePath: p, ramBytes: 32 * MiB, image: guestImage(),
        onConsole: () => (scansAtFirstConsoleLine ??= run.mock.calls.length),
      });
      expect(r.status).toBe('resumed');
      expect(scansAtFirstConsoleLine).toBe(1);
      expect(run.mock.calls[0]![0].pageCount).toBe(r.restore!.pagesLoaded);
      // The scan is reported: every chunk checked once, by one thread or the other.
      expect(r.validationScan!.chunks).toBe(Math.ceil(r.restore!.pagesLoaded / 256));
      expect(r.validationScan!.crcThreadChunks).toBeLessThanOrEqual(r.validationScan!.chunks);
    } finally {
      run.mockRestore();
    }
  });

  /** Runs `touch` on the file once validation is done (after its second version() call), as if it changed then. */
  function changeAfterValidation(path: string, touch: (path: string) => void) {
    const original = SwapDevice.prototype.version;
    let calls = 0;
    return vi.spyOn(SwapDevice.prototype, 'version').mockImplementation(function (this: SwapDevice) {
      if (++calls === 3) touch(path);
      return original.call(this);
    });
  }

  it('a file written to after validation (same bytes) is loaded through the checking reader, and resumes', async () => {
    const p = variant('touched', () => {});
    const version = changeAfterValidation(p, (f) => patchByte(f, dataOffset + 5, 0)); // a write that changes nothing but the file's times
    const straight = vi.spyOn(SwapDevice.prototype, 'readAtAsync');
    try {
      const r = await resume({ imagePath: p, ramBytes: 32 * MiB, image: guestImage() });
      expect(r.status).toBe('resumed');
      expect(r.check?.memory?.differingPages).toEqual([]);
      expect(r.verify.length).toBeGreaterThan(0);
      expect(r.verify.every((v) => v.badWords === 0)).toBe(true);
      expect(straight).not.toHaveBeenCalled(); // nothing went straight from the file into guest frames
    } finally {
      version.mockRestore();
      straight.mockRestore();
    }
  });

  it('a page corrupted after validation is caught by the checking reader: refused, and the frames the load took are freed', async () => {
    const p = variant('corrupted-late', () => {});
    const version = changeAfterValidation(p, (f) => patchByte(f, dataOffset + 3 * 4096 + 7, 0x20));
    try {
      const r = await resume({ imagePath: p, ramBytes: 32 * MiB, image: guestImage() });
      expect(r.status).toBe('refused');
      expect(r.errorCode).toBe('BAD_PAGE_CRC');
      expect(r.reason).toMatch(/^page 3 \(PFN 0x[0-9a-f]+\) at offset \d+ of .* is corrupt: .* \(during the load; the \d+ frames it had taken were freed\)$/);
      expect(r.signatureReset).toBe(false);
    } finally {
      version.mockRestore();
    }
  });

  it('a load read that comes back short (the file shrank after validation) is refused only after every other read has ended, and the frames it took are freed', async () => {
    // An image whose in-place pages take several reads (they go 8 MiB at a time).
    const p = tempSwapPath('short-load');
    await hibernate({ ramBytes: 32 * MiB, workload: 'stream:12M', image: guestImage(), imagePath: p, oracle: false });
    const original = SwapDevice.prototype.readAtAsync;
    const events: string[] = [];
    let calls = 0;
    const reads = vi.spyOn(SwapDevice.prototype, 'readAtAsync').mockImplementation(async function (this: SwapDevice, into: Uint8Array, offset: number) {
      const n = calls++;
      if (n === 0) return into.length - 4096; // the first one ends a page early, at once
      await new Promise((resolve) => setTimeout(resolve, 20)); // the others are still running then
      const got = await original.call(this, into, offset);
      events.push('read ended');
      return got;
    });
    const freeOriginal = Guest.prototype.freeSnapshotFrames;
    const frees = vi.spyOn(Guest.prototype, 'freeSnapshotFrames').mockImplementation(function (this: Guest) {
      events.push('frames freed');
      return freeOriginal.call(this);
    });
    try {
      const before = sha256File(p);
      const r = await resume({ imagePath: p, ramBytes: 32 * MiB, image: guestImage() });
      expect(r.status).toBe('refused');
      expect(r.errorCode).toBe('RESTORE_REFUSED');
      expect(r.reason).toMatch(/ended while loading page \d+ \(during the load; the \d+ frames it had taken were freed\)/);
      expect(calls).toBeGreaterThan(1);
      expect(events.filter((e) => e === 'read ended')).toHaveLength(calls - 1);
      expect(events.at(-1)).toBe('frames freed');
      expect(r.signatureReset).toBe(false);
      expect(sha256File(p)).toBe(before);
    } finally {
      reads.mockRestore();
      frees.mockRestore();
    }
  });
});
