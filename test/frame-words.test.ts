import { describe, expect, it } from 'vitest';
import { countBits, forEachRunPair, framesOfWords, runsOfWords, wordsOfFrames } from '../src/pages/page-set.ts';

/** A deterministic pseudo-random frame set over `bits` frames: runs of varying length, gaps, full and empty words. */
function randomSet(seed: number, bits: number): number[] {
  let x = seed >>> 0 || 1;
  const next = (): number => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x);
  const out: number[] = [];
  let pfn = 0;
  let inRun = next() & 1;
  while (pfn < bits) {
    const len = 1 + (next() % (next() & 1 ? 3 : 200));
    if (inRun) for (let p = pfn; p < Math.min(bits, pfn + len); p++) out.push(p);
    pfn += len;
    inRun ^= 1;
  }
  return out;
}

/** Runs the slow way: frame by frame. */
function runsOfFrames(pfns: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < pfns.length; ) {
    let n = 1;
    while (i + n < pfns.length && pfns[i + n] === pfns[i]! + n) n++;
    out.push(pfns[i]!, n);
    i += n;
  }
  return out;
}

describe('frame sets as bitmap words', () => {
  it('runsOfWords, framesOfWords and countBits agree with a frame-by-frame walk on random sets, any frame count', () => {
    for (const bits of [1, 31, 32, 33, 64, 1000, 8192, 8200]) {
      for (let seed = 1; seed <= 20; seed++) {
        const set = randomSet(seed * 7919 + bits, bits);
        const words = wordsOfFrames(set, bits);
        expect(Array.from(runsOfWords(words, bits))).toEqual(runsOfFrames(set));
        expect(Array.from(framesOfWords(words, bits))).toEqual(set);
        expect(countBits(words)).toBe(set.length);
      }
    }
  });

  it('runsOfWords ignores bits at or beyond the frame count, and joins runs across word boundaries', () => {
    const words = Uint32Array.of(0x80000000, 0xffffffff, 0x00000003, 0xffffffff);
    // frames 31..65 are one run; word 3 lies beyond 100 frames except for its first 4 bits.
    expect(Array.from(runsOfWords(words, 100))).toEqual([31, 35, 96, 4]);
    expect(Array.from(runsOfWords(words, 128))).toEqual([31, 35, 96, 32]);
    expect(Array.from(runsOfWords(new Uint32Array(4), 128))).toEqual([]);
    expect(Array.from(runsOfWords(new Uint32Array(4).fill(0xffffffff), 128))).toEqual([0, 128]);
  });

  it('wordsOfFrames refuses a frame outside the bitmap', () => {
    expect(() => wordsOfFrames([5, 64], 64)).toThrow('frame 64 outside a bitmap of 64');
  });

  it('forEachRunPair pairs the i-th frame of one set with the i-th of another, in stretches where both are consecutive', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const a = randomSet(seed, 5000);
      const b = randomSet(seed + 1000, 20000).slice(0, a.length);
      if (b.length < a.length) continue;
      const pairs: number[] = [];
      const stretches: Array<[number, number, number, number]> = [];
      forEachRunPair(runsOfWords(wordsOfFrames(a, 5000), 5000), runsOfWords(wordsOfFrames(b, 20000), 20000), (index, x, y, n) => {
        stretches.push([index, x, y, n]);
        for (let k = 0; k < n; k++) pairs.push(index + k, x + k, y + k);
      });
      const expected: number[] = [];
      for (let i = 0; i < a.length; i++) expected.push(i, a[i]!, b[i]!);
      expect(pairs).toEqual(expected);
      // Maximal: two neighbouring stretches never continue each other in both sets.
      for (let s = 1; s < stretches.length; s++) {
        const [, x0, y0, n0] = stretches[s - 1]!;
        const [, x1, y1] = stretches[s]!;
        expect(x1 === x0 + n0 && y1 === y0 + n0).toBe(false);
      }
    }
  });

  it('forEachRunPair refuses run lists of different totals before calling back', () => {
    const calls: number[] = [];
    expect(() => forEachRunPair(Uint32Array.of(0, 10), Uint32Array.of(100, 9), (i) => calls.push(i))).toThrow('different numbers of frames (10 and 9)');
    expect(calls).toEqual([]);
  });
});
