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
  /** u32 index in guest RAM of the first word of each bitmap page. */
  private readonly pageWord: Uint32Array;

  constructor(private readonly m: Machine, readonly frames: ArrayLike<number>, readonly bits: number) {
    if (frames.length < bitmapPages(bits)) throw new RangeError(`bitmap over ${bits} frames needs ${bitmapPages(bits)} pages, got ${frames.length}`);
    this.pageWord = Uint32Array.from({ length: bitmapPages(bits) }, (_, i) => frames[i]! * 1024);
  }

  clear(): void {
    for (let i = 0; i < this.frames.length; i++) this.m.ram.fill(0, this.frames[i]! * 4096, this.frames[i]! * 4096 + 4096);
  }

  set(bit: number): void {
    const w = this.wordIndex(bit);
    const ram32 = this.m.ram32;
    ram32[w] = (ram32[w]! | (1 << (bit & 31))) >>> 0;
  }

  test(bit: number): boolean {
    return ((this.m.ram32[this.wordIndex(bit)]! >>> (bit & 31)) & 1) === 1;
  }

  /** Word w (bits 32w .. 32w+31) of the bitmap. */
  word(w: number): number {
    const bit0 = w * 32;
    if (!(bit0 >= 0 && bit0 < this.bits)) throw new RangeError(`word ${w} outside bitmap of ${this.bits}`);
    return this.m.ram32[this.pageWord[bit0 >>> 15]! + ((bit0 & 32767) >>> 5)]!;
  }

  /** Sets every listed bit (one loop, no call per bit). */
  setAll(list: ArrayLike<number>): void {
    const ram32 = this.m.ram32;
    const pageWord = this.pageWord;
    const bits = this.bits;
    for (let i = 0; i < list.length; i++) {
      const bit = list[i]!;
      if (!(bit >= 0 && bit < bits)) throw new RangeError(`bit ${bit} outside bitmap of ${bits}`);
      const w = pageWord[bit >>> 15]! + ((bit & 32767) >>> 5);
      ram32[w] = (ram32[w]! | (1 << (bit & 31))) >>> 0;
    }
  }

  /** Sets the bitmap to `words` (word w = bits 32w .. 32w+31; bits at or beyond `bits` must be 0). */
  setWords(words: Uint32Array): void {
    const words32 = Math.ceil(this.bits / 32);
    if (words.length !== words32) throw new RangeError(`setWords: ${words.length} words for a bitmap of ${words32}`);
    const ram32 = this.m.ram32;
    for (let p = 0; p < this.pageWord.length; p++) ram32.set(words.subarray(p * 1024, Math.min((p + 1) * 1024, words.length)), this.pageWord[p]!);
  }

  /** The set bits, ascending. */
  toArray(): Uint32Array {
    const out = new Uint32Array(this.bits);
    let n = 0;
    const ram32 = this.m.ram32;
    const words = Math.ceil(this.bits / 32);
    for (let w = 0; w < words; w++) {
      const bit0 = w * 32;
      let word = ram32[this.pageWord[bit0 >>> 15]! + ((bit0 & 32767) >>> 5)]!;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        if (bit0 + b < this.bits) out[n++] = bit0 + b;
        word = (word & (word - 1)) >>> 0;
      }
    }
    return out.slice(0, n);
  }

  private wordIndex(bit: number): number {
    if (!(bit >= 0 && bit < this.bits)) throw new RangeError(`bit ${bit} outside bitmap of ${this.bits}`);
    return this.pageWord[bit >>> 15]! + ((bit & 32767) >>> 5);
  }
}
