/**
 * Memory bitmaps (Linux's struct memory_bitmap, flattened): one bit per frame, kept
 * in guest frames that the hibernation took from the guest's allocator.
 */
import type { Machine } from '../machine/machine.ts';
import { PAGE_SIZE } from '../units.ts';
import { frameMask } from './page-set.ts';

export const BITS_PER_PAGE = PAGE_SIZE * 8;

/** Frames needed for a bitmap over `frameCount` frames. */
export function bitmapPages(frameCount: number): number {
  return Math.ceil(frameCount / BITS_PER_PAGE);
}

/** A bitmap stored in guest frames (not necessarily contiguous). */
export class MemoryBitmap {
  /** u32 index in guest RAM of the first word of each bitmap page. */
  private readonly pageWord: Uint32Array;

  constructor(private readonly m: Machine, readonly frames: ArrayLike<number>, readonly bits: number) {
    if (frames.length < bitmapPages(bits)) throw new RangeError(`bitmap over ${bits} frames needs ${bitmapPages(bits)} pages, got ${frames.length}`);
    this.pageWord = Uint32Array.from({ length: bitmapPages(bits) }, (_, i) => frames[i]! * 1024);
  }

  clear(): void {
    for (let i = 0; i < this.frames.length; i++) this.m.ram.fill(0, this.frames[i]! * PAGE_SIZE, (this.frames[i]! + 1) * PAGE_SIZE);
  }

  /** Word w (bits 32w .. 32w+31) of the bitmap. */
  word(w: number): number {
    const bit0 = w * 32;
    if (!(bit0 >= 0 && bit0 < this.bits)) throw new RangeError(`word ${w} outside bitmap of ${this.bits}`);
    return this.m.ram32[this.pageWord[bit0 >>> 15]! + ((bit0 & 32767) >>> 5)]!;
  }

  /** Sets the bitmap to `words` (word w = bits 32w .. 32w+31; bits at or beyond `bits` must be 0). */
  setWords(words: Uint32Array): void {
    const words32 = Math.ceil(this.bits / 32);
    if (words.length !== words32) throw new RangeError(`setWords: ${words.length} words for a bitmap of ${words32}`);
    const ram32 = this.m.ram32;
    for (let p = 0; p < this.pageWord.length; p++) ram32.set(words.subarray(p * 1024, Math.min((p + 1) * 1024, words.length)), this.pageWord[p]!);
  }

  /** The bitmap as words (word w = bits 32w .. 32w+31), read from its guest pages. */
  toWords(): Uint32Array {
    const words32 = Math.ceil(this.bits / 32);
    const out = new Uint32Array(words32);
    const ram32 = this.m.ram32;
    for (let p = 0; p < this.pageWord.length; p++) {
      const first = p * 1024;
      const n = Math.min(1024, words32 - first);
      out.set(ram32.subarray(this.pageWord[p]!, this.pageWord[p]! + n), first);
    }
    out[words32 - 1] = (out[words32 - 1]! & frameMask(words32 - 1, this.bits)) >>> 0;
    return out;
  }
}
