/**
 * Memory bitmaps (Linux's struct memory_bitmap, flattened): one bit per frame, kept
 * in guest frames that the hibernation took from the guest's allocator.
 */
import type { Machine } from '../machine/machine.ts';

export const BITS_PER_PAGE = 4096 * 8;

/** Frames needed for a bitmap over `frameCount` frames. */
export function bitmapPages(frameCount: number): number {
  return Math.ceil(frameCount / BITS_PER_PAGE);
}

/** A bitmap stored in guest frames (not necessarily contiguous). */
export class GuestBitmap {
  constructor(private readonly m: Machine, readonly frames: ArrayLike<number>, readonly bits: number) {
    if (frames.length < bitmapPages(bits)) throw new RangeError(`bitmap over ${bits} frames needs ${bitmapPages(bits)} pages, got ${frames.length}`);
  }

  clear(): void {
    for (let i = 0; i < this.frames.length; i++) this.m.ram.fill(0, this.frames[i]! * 4096, this.frames[i]! * 4096 + 4096);
  }

  set(bit: number): void {
    const addr = this.wordAddr(bit);
    const ram32 = this.m.ram32;
    ram32[addr >>> 2] = (ram32[addr >>> 2]! | (1 << (bit & 31))) >>> 0;
  }

  test(bit: number): boolean {
    return ((this.m.ram32[this.wordAddr(bit) >>> 2]! >>> (bit & 31)) & 1) === 1;
  }

  /** A predicate for many tests in a row (no run of the guest in between): one RAM view for all. */
  tester(): (bit: number) => boolean {
    const ram32 = this.m.ram32;
    return (bit) => ((ram32[this.wordAddr(bit) >>> 2]! >>> (bit & 31)) & 1) === 1;
  }

  /** Sets every bit listed. */
  setAll(bits: ArrayLike<number>): void {
    for (let i = 0; i < bits.length; i++) this.set(bits[i]!);
  }

  /** The set bits in ascending order (memory_bm_next_pfn over the whole bitmap). */
  toArray(): Uint32Array {
    const out: number[] = [];
    const ram32 = this.m.ram32;
    const words = Math.ceil(this.bits / 32);
    for (let w = 0; w < words; w++) {
      const bit0 = w * 32;
      let word = ram32[(this.frames[Math.floor(bit0 / BITS_PER_PAGE)]! * 4096 + ((bit0 % BITS_PER_PAGE) >>> 3)) >>> 2]!;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        if (bit0 + b < this.bits) out.push(bit0 + b);
        word = (word & (word - 1)) >>> 0;
      }
    }
    return Uint32Array.from(out);
  }

  private wordAddr(bit: number): number {
    if (bit < 0 || bit >= this.bits) throw new RangeError(`bit ${bit} outside bitmap of ${this.bits}`);
    const page = this.frames[Math.floor(bit / BITS_PER_PAGE)]!;
    return page * 4096 + (((bit % BITS_PER_PAGE) >>> 5) << 2);
  }
}
