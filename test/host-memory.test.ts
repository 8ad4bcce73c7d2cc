import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { adviseHugePages, hugePageMemory, transparentHugePageMode } from '../src/machine/host-memory.ts';
import { hiberlabNative } from '../src/native.ts';
import { Machine } from '../src/machine/machine.ts';
import { Wasm } from '../src/machine/v86.ts';
import { guestImage, MiB } from './helpers.ts';

const HUGE = 2 * MiB;
const mode = transparentHugePageMode();
const thp = mode === 'always' || mode === 'madvise';

/** AnonHugePages of the mappings that overlap [start, start + length) (host addresses), from /proc/self/smaps. */
function hugeBytesIn(start: number, length: number): number {
  let vma: [number, number] | undefined;
  let sum = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      vma = [parseInt(range[1]!, 16), parseInt(range[2]!, 16)];
      continue;
    }
    const huge = /^AnonHugePages:\s+(\d+) kB/.exec(line);
    if (huge && vma && vma[0] < start + length && vma[1] > start) sum += Number(huge[1]) * 1024;
  }
  return sum;
}

function native() {
  const n = hiberlabNative();
  if (n instanceof Error) throw n;
  return n;
}

describe('guest RAM on host huge pages (native/host-memory.c)', () => {
  it('is built by npm install and loads', () => {
    expect(hiberlabNative()).not.toBeInstanceOf(Error);
    expect(native().hugePageSize()).toBe(HUGE);
  });

  it('advises exactly the 2 MiB-aligned interior of the range it is given', () => {
    const buffer = new Wasm.Memory({ initial: (16 * MiB) / 65536 }).buffer;
    const base = native().address(buffer);
    const offset = 12345;
    const length = 9 * MiB;
    const first = Math.ceil((base + offset) / HUGE) * HUGE;
    const end = Math.floor((base + offset + length) / HUGE) * HUGE;
    const advice = adviseHugePages(buffer, offset, length);
    if (thp) expect(advice).toEqual({ advisedBytes: end - first, mode });
    else expect(advice).toMatchObject({ advisedBytes: 0, mode });
    // Less than one aligned huge page inside the range: nothing to advise, and no error.
    expect(adviseHugePages(buffer, 1, HUGE - 2).advisedBytes).toBe(0);
  });

  it('refuses a range outside the buffer or a buffer that is not one, with the reason', () => {
    const buffer = new Wasm.Memory({ initial: 64 }).buffer;
    const outside = adviseHugePages(buffer, 4096, buffer.byteLength);
    const notBuffer = adviseHugePages(new Uint8Array(8) as unknown as ArrayBuffer, 0, 8);
    if (!thp) return;
    expect(outside).toEqual({ advisedBytes: 0, mode, reason: 'adviseHugePages(buffer, offset, length): the range must lie inside the buffer' });
    expect(notBuffer).toEqual({ advisedBytes: 0, mode, reason: 'adviseHugePages(buffer, offset, length): buffer must be an ArrayBuffer' });
  });

  it.skipIf(!thp)('hugePageMemory starts on a 2 MiB boundary and the host backs it with huge pages once touched', () => {
    const { bytes, advice } = hugePageMemory(4 * MiB);
    expect(advice).toEqual({ advisedBytes: 4 * MiB, mode });
    const start = native().address(bytes.buffer as ArrayBuffer) + bytes.byteOffset;
    expect(start % HUGE).toBe(0);
    bytes.fill(1);
    expect(hugeBytesIn(start, 4 * MiB)).toBe(4 * MiB);
  });

  it.skipIf(!thp)('a prefaulted machine has its guest RAM on huge pages; with hostHugePages: false it has none', async () => {
    const ramBytes = 64 * MiB;
    for (const hostHugePages of [true, false]) {
      const m = await Machine.boot({ ramBytes, image: guestImage(), prefault: true, hostHugePages });
      try {
        const start = native().address(m.ram.buffer as ArrayBuffer) + m.ram.byteOffset;
        const interior = Math.floor((start + ramBytes) / HUGE) * HUGE - Math.ceil(start / HUGE) * HUGE;
        if (hostHugePages) {
          expect(m.hugePages).toEqual({ advisedBytes: interior, mode });
          // v86 loaded the kernel (at 1 MiB) before the advice: that span may keep 4 KiB pages.
          expect(hugeBytesIn(Math.ceil(start / HUGE) * HUGE, interior)).toBeGreaterThanOrEqual(interior - 2 * HUGE);
        } else {
          expect(m.hugePages).toEqual({ advisedBytes: 0, mode: 'off', reason: 'not requested' });
          // In `madvise` mode only advised memory gets huge pages (`always` gives them anyway).
          if (mode === 'madvise') expect(hugeBytesIn(start, ramBytes)).toBe(0);
        }
      } finally {
        await m.powerOff();
      }
    }
  });
});
