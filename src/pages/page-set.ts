/**
 * Frame sets as bitmap words (word w = frames 32w .. 32w+31, bit b = frame 32w + b), the
 * form the allocator keeps them in. The functions below work a word at a time and a run
 * at a time, not a frame at a time: a save or a resume runs once per process, so its
 * code runs cold in V8's interpreter, where a loop over 59 k frames costs milliseconds
 * and a loop over 1.9 k words or a few dozen runs costs microseconds.
 */

/** Set bits in one word. */
export function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * The bits of word w that are frames of a bitmap over `bits` frames: all 32, except in
 * the last word when `bits` is not a multiple of 32.
 */
export function frameMask(w: number, bits: number): number {
  const left = bits - w * 32;
  return left >= 32 ? 0xffffffff : left > 0 ? (1 << left) - 1 : 0;
}

/** Set bits in all of `words`. */
export function countBits(words: Uint32Array): number {
  let n = 0;
  for (let w = 0; w < words.length; w++) {
    const x = words[w]!;
    if (x !== 0) n += x === 0xffffffff ? 32 : popcount(x);
  }
  return n;
}

/**
 * The maximal runs of set bits below `bits`, as pairs (first frame, length) in one array:
 * [start0, count0, start1, count1, ...]. A word of all ones or all zeros costs one step.
 */
export function runsOfWords(words: Uint32Array, bits: number): Uint32Array {
  let out = new Uint32Array(64);
  let n = 0;
  let start = -1;
  const lastWord = Math.min(words.length, Math.ceil(bits / 32));
  const push = (first: number, end: number): void => {
    if (n + 2 > out.length) {
      const grown = new Uint32Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[n++] = first;
    out[n++] = end - first;
  };
  for (let w = 0; w < lastWord; w++) {
    const x = (words[w]! & frameMask(w, bits)) >>> 0;
    const bit0 = w * 32;
    if (x === 0xffffffff) {
      if (start < 0) start = bit0;
      continue;
    }
    let b = 0; // bits of x below b are done
    while (b < 32) {
      if (start >= 0) {
        // In a run: it ends at the first zero at or above b.
        const zeros = ~x >>> b;
        if (zeros === 0) break; // the rest of the word is ones: the run goes on
        b += 31 - Math.clz32(zeros & -zeros);
        push(start, bit0 + b);
        start = -1;
      } else {
        const ones = x >>> b;
        if (ones === 0) break;
        b += 31 - Math.clz32(ones & -ones);
        start = bit0 + b;
      }
    }
  }
  if (start >= 0) push(start, Math.min(bits, lastWord * 32));
  return out.slice(0, n);
}

/** The set bits below `bits`, ascending, one entry per frame (for the image's PFN list). */
export function framesOfWords(words: Uint32Array, bits: number): Uint32Array {
  const runs = runsOfWords(words, bits);
  let total = 0;
  for (let r = 1; r < runs.length; r += 2) total += runs[r]!;
  const out = new Uint32Array(total);
  let n = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const first = runs[r]!;
    const end = first + runs[r + 1]!;
    for (let pfn = first; pfn < end; pfn++) out[n++] = pfn;
  }
  return out;
}

/** Bitmap words over `bits` frames with the listed frames set. */
export function wordsOfFrames(pfns: ArrayLike<number>, bits: number): Uint32Array {
  const words = new Uint32Array(Math.ceil(bits / 32));
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i]!;
    if (!(p >= 0 && p < bits)) throw new RangeError(`frame ${p} outside a bitmap of ${bits}`);
    words[p >>> 5] = (words[p >>> 5]! | (1 << (p & 31))) >>> 0;
  }
  return words;
}

/**
 * Walks two run lists of the same total length side by side (runsOfWords' form; lists of
 * different totals are refused before fn is called): calls
 * fn(index, a, b, count) for each stretch where both runs go on, index being the position
 * of a in its list (the image index of swsusp's page a, whose copy is b).
 */
export function forEachRunPair(aRuns: Uint32Array, bRuns: Uint32Array, fn: (index: number, a: number, b: number, count: number) => void): void {
  let aTotal = 0;
  let bTotal = 0;
  for (let r = 1; r < aRuns.length; r += 2) aTotal += aRuns[r]!;
  for (let r = 1; r < bRuns.length; r += 2) bTotal += bRuns[r]!;
  if (aTotal !== bTotal) throw new RangeError(`forEachRunPair: the two run lists cover different numbers of frames (${aTotal} and ${bTotal})`);
  let i = 0;
  let j = 0;
  let aAt = aRuns[0] ?? 0;
  let aLeft = aRuns[1] ?? 0;
  let bAt = bRuns[0] ?? 0;
  let bLeft = bRuns[1] ?? 0;
  let index = 0;
  while (i < aRuns.length && j < bRuns.length) {
    const n = Math.min(aLeft, bLeft);
    fn(index, aAt, bAt, n);
    index += n;
    aAt += n;
    bAt += n;
    aLeft -= n;
    bLeft -= n;
    if (aLeft === 0) {
      i += 2;
      aAt = aRuns[i] ?? 0;
      aLeft = aRuns[i + 1] ?? 0;
    }
    if (bLeft === 0) {
      j += 2;
      bAt = bRuns[j] ?? 0;
      bLeft = bRuns[j + 1] ?? 0;
    }
  }
}

/** Calls fn(index, srcPfn, dstPfn, count) for maximal runs where both src[i] and dst[i] ascend by one. */
export function forEachRun(src: ArrayLike<number>, dst: ArrayLike<number>, fn: (index: number, srcPfn: number, dstPfn: number, count: number) => void): void {
  let i = 0;
  while (i < src.length) {
    let n = 1;
    while (i + n < src.length && src[i + n] === src[i]! + n && dst[i + n] === dst[i]! + n) n++;
    fn(i, src[i]!, dst[i]!, n);
    i += n;
  }
}
