/**
 * Parts several restore strategies share (Linux kernel/power/snapshot.c's
 * prepare_image, get_buffer and the PBE lists; seeds 000 and 001):
 *
 *   checkSameKernel   the image's context and the trampoline fit this boot kernel
 *   unsafeWords       the image's original frames, as allocator-bitmap words
 *   claimUnsafeBitmap the "unsafe" memory bitmap, in free frames that are no original location
 *   allocationPass    one pass over the free frames: unsafe ones loaded in place, others safe pages
 *   PbeList           page backup entries (copy address, original address, next) in guest frames
 *   loadImage         the image streamed in: straight into frames, or handed over page by page
 *   relocateTrampoline the position-independent trampoline copied into a safe page
 */
import { CONSTANTS, OWNERS, STRUCTS } from '../abi.ts';
import { crc32 } from '../image/crc.ts';
import { ImageReader, type ValidatedImage } from '../image/index.ts';
import type { GuestAllocator } from '../machine/allocator.ts';
import type { BootInfo } from '../machine/guest-structs.ts';
import type { Guest } from '../machine/guest.ts';
import type { Machine } from '../machine/machine.ts';
import { PTE } from '../mmu/page-table.ts';
import { MemoryBitmap, bitmapPages } from '../pages/memory-bitmap.ts';
import { countBits, frameMask, popcount, runsOfWords } from '../pages/page-set.ts';
import { hex, PAGE_SIZE } from '../units.ts';
import { RestoreRefusedError, type RestoreContext } from './strategy.ts';

const PBE_BYTES = STRUCTS.pbe.size;
export const PBES_PER_PAGE = Math.floor(PAGE_SIZE / PBE_BYTES);
/** Pages read from the image per chunk. */
const CHUNK_PAGES = 2048;

/** Refuses an image whose saved context or trampoline does not match this boot kernel's layout. */
export function checkSameKernel(image: ValidatedImage, bi: BootInfo): void {
  if (image.header.context.address !== bi.saved_context) {
    throw new RestoreRefusedError(`image's saved context is at ${hex(image.header.context.address)} but this kernel's is at ${hex(bi.saved_context)}: not the same kernel layout`);
  }
  const trampolineBytes = bi.trampoline_end - bi.trampoline_start;
  if (trampolineBytes <= 0 || trampolineBytes > PAGE_SIZE) throw new RestoreRefusedError(`trampoline of ${trampolineBytes} bytes does not fit one page`);
  const frames = bi.frame_count;
  const beyond = firstAtOrAbove(image.pfns, frames);
  if (beyond < image.pfns.length) throw new RestoreRefusedError(`image page ${beyond} belongs to frame ${hex(image.pfns[beyond]!)}, beyond this machine's ${frames} frames`);
}

/** The image's original frames ("unsafe" for anything else) as words over the allocator's bitmap. */
export function unsafeWords(image: ValidatedImage, alloc: GuestAllocator): Uint32Array {
  const words = new Uint32Array(alloc.bitmap.length);
  // Validation made the PFNs into words already (all below frame_count, checked by
  // checkSameKernel: a shorter or longer array only differs in words that are zero).
  words.set(image.pfnWords.subarray(0, words.length));
  return words;
}

/** The unsafe frames the boot kernel has free: those pages can be loaded in place. */
export function freeOriginals(unsafe: Uint32Array, alloc: GuestAllocator): { words: Uint32Array; count: number } {
  const bm = alloc.bitmap;
  const words = new Uint32Array(bm.length);
  let count = 0;
  for (let w = 0; w < bm.length; w++) {
    const bits = (unsafe[w]! & ~bm[w]!) >>> 0;
    words[w] = bits;
    if (bits !== 0) count += popcount(bits);
  }
  return { words, count };
}

/**
 * The unsafe memory bitmap in guest frames: its pages are the lowest free frames that are
 * no original location (taken, owner SNAPSHOT); the words of `unsafe` are stored in it.
 */
export function claimUnsafeBitmap(guest: Guest, unsafe: Uint32Array): MemoryBitmap {
  const alloc = guest.allocator;
  const bm = alloc.bitmap;
  const frames = alloc.frameCount;
  const pages = bitmapPages(frames);
  const claim = new Uint32Array(bm.length);
  const bmFrames = new Uint32Array(pages);
  let n = 0;
  for (let w = 0; w < bm.length && n < pages; w++) {
    let other = (~bm[w]! & ~unsafe[w]! & frameMask(w, frames)) >>> 0;
    while (other !== 0 && n < pages) {
      const bit = (other & -other) >>> 0;
      other = (other & ~bit) >>> 0;
      claim[w] = (claim[w]! | bit) >>> 0;
      bmFrames[n++] = w * 32 + 31 - Math.clz32(bit);
    }
  }
  if (n !== pages) throw new RestoreRefusedError(`the unsafe bitmap needs ${pages} frames that are no original location, found ${n}`);
  alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
  const unsafeBm = new MemoryBitmap(guest.machine, bmFrames, frames);
  unsafeBm.clear();
  unsafeBm.setWords(unsafe);
  return unsafeBm;
}

/**
 * One pass over the boot kernel's free frames, word by word, reading the unsafe bitmap
 * from guest memory (Linux's prepare_image with its one-shot allocation): a free frame
 * marked unsafe is taken for its own page (loaded in place), any other free one is taken
 * as a safe page while fewer than `safeWanted` were. All taken frames get owner SNAPSHOT.
 *
 * With `high` (a boot kernel with highmem): the `safeWanted` safe pages come from lowmem
 * (below high.lowFrames), and `high.wanted` more (highSafe, for the copies of highmem
 * pages) from highmem, or from what lowmem has left when highmem has too few (Linux
 * takes highmem copies from highmem first, too).
 */
export function allocationPass(
  alloc: GuestAllocator,
  unsafeBm: MemoryBitmap,
  safeWanted: number,
  high?: { readonly lowFrames: number; readonly wanted: number },
): { inPlace: number; safe: Uint32Array; highSafe: Uint32Array } {
  const bm = alloc.bitmap;
  const words = bm.length;
  const frames = alloc.frameCount;
  const lowFrames = high?.lowFrames ?? frames;
  const highWanted = high?.wanted ?? 0;
  const claim = new Uint32Array(words);
  const safe = new Uint32Array(safeWanted);
  const highSafe = new Uint32Array(highWanted);
  let inPlace = 0;
  let nSafe = 0;
  let nHigh = 0;
  for (let w = 0; w < words; w++) {
    const free = (~bm[w]! & frameMask(w, frames)) >>> 0;
    if (free === 0) continue;
    const unsafeWord = unsafeBm.word(w);
    const own = (free & unsafeWord) >>> 0;
    claim[w] = own;
    if (own !== 0) inPlace += popcount(own);
    let other = (free & ~unsafeWord) >>> 0;
    while (other !== 0 && (nSafe < safeWanted || nHigh < highWanted)) {
      const bit = (other & -other) >>> 0;
      other = (other & ~bit) >>> 0;
      const pfn = w * 32 + 31 - Math.clz32(bit);
      if (pfn < lowFrames ? nSafe < safeWanted : nHigh < highWanted) {
        claim[w] = (claim[w]! | bit) >>> 0;
        if (pfn < lowFrames) safe[nSafe++] = pfn;
        else highSafe[nHigh++] = pfn;
      }
    }
  }
  // Highmem too full for the highmem copies: what lowmem has left.
  for (let w = 0; w < words && nHigh < highWanted && w * 32 < lowFrames; w++) {
    let other = (~bm[w]! & ~unsafeBm.word(w) & ~claim[w]! & frameMask(w, lowFrames)) >>> 0;
    while (other !== 0 && nHigh < highWanted) {
      const bit = (other & -other) >>> 0;
      other = (other & ~bit) >>> 0;
      claim[w] = (claim[w]! | bit) >>> 0;
      highSafe[nHigh++] = w * 32 + 31 - Math.clz32(bit);
    }
  }
  if (nSafe !== safeWanted || nHigh !== highWanted) throw new RestoreRefusedError(`internal: ${safeWanted} + ${highWanted} safe frames planned, ${nSafe} + ${nHigh} found`);
  alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
  return { inPlace, safe, highSafe };
}

/** A PBE list (struct pbe: address of the copy, original address, next) built in guest frames. */
export class PbeList {
  count = 0;
  private prev = 0;

  constructor(private readonly m: Machine, private readonly pages: Uint32Array) {}

  /** PBE pages a list of `n` entries needs. */
  static pagesFor(n: number): number {
    return Math.ceil(n / PBES_PER_PAGE);
  }

  /** Physical address of the first entry (0 for an empty list). */
  get head(): number {
    return this.count > 0 ? this.pages[0]! * PAGE_SIZE : 0;
  }

  /** Appends the entry: the page at frame `copy` belongs at frame `orig`. */
  add(copy: number, orig: number): void {
    const ram32 = this.m.ram32;
    const page = this.pages[Math.floor(this.count / PBES_PER_PAGE)];
    if (page === undefined) throw new RestoreRefusedError(`internal: the PBE list's ${this.pages.length} pages are full`);
    const addr = page * PAGE_SIZE + (this.count % PBES_PER_PAGE) * PBE_BYTES;
    ram32[addr >>> 2] = copy * PAGE_SIZE;
    ram32[(addr >>> 2) + 1] = orig * PAGE_SIZE;
    ram32[(addr >>> 2) + 2] = 0;
    if (this.prev) ram32[(this.prev >>> 2) + 2] = addr;
    this.prev = addr;
    this.count++;
  }
}

/**
 * Copies the trampoline's bytes into frame `pfn` (the rest of the page zero) and drops
 * the JIT's and TLB's stale state; returns its address. `pageDirectory`: the frame of a
 * page directory mapping lowmem 1:1 (resumePageDirectory) for a trampoline that copies
 * with paging on; 0 (default): it copies with paging off.
 */
export function relocateTrampoline(guest: Guest, pfn: number, pageDirectory = 0): number {
  const m = guest.machine;
  const bi = guest.bootInfo;
  m.ram.fill(0, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  m.write(pfn * PAGE_SIZE, m.view(bi.trampoline_start, bi.trampoline_end - bi.trampoline_start).slice());
  m.ram32[(pfn * PAGE_SIZE + CONSTANTS.TRAMPOLINE_PD_SLOT.value) >>> 2] = pageDirectory * PAGE_SIZE;
  m.clearJitCache();
  m.flushTlb();
  return pfn * PAGE_SIZE;
}

/**
 * Streams the image in. Pages whose frame is in `straight` go from the file straight
 * into their original frames (several reads at once on libuv's pool) when the file is
 * provably the one validated and its pages are stored whole; every other page is read
 * and checked against its CRC on this thread and handed to `other(pfn, page, index)`,
 * in frame order, which decides where it goes. Pages whose frame is in `skip` are not
 * loaded here (the caller reads them itself, later). A page changed on the device since validation is refused
 * (RestoreRefusedError or BAD_PAGE_CRC), never loaded wrong.
 */
export async function loadImage(ctx: RestoreContext, straight: Uint32Array, other: (pfn: number, page: Uint8Array, index: number) => void, skip?: Uint32Array): Promise<void> {
  const { image, swap, progress } = ctx;
  const m = ctx.guest.machine;
  const frames = ctx.guest.allocator.frameCount;
  const pfns = image.pfns;
  const reader = new ImageReader(image, swap);
  const ram = m.ram;
  const phase = progress.phase('load image', pfns.length);
  let loaded = 0;
  // Straight reads only from a file that is provably the one validated, and whose pages
  // are stored whole (a compressed image's go through the reader, which decodes them);
  // else everything is checked.
  const direct = swap.version() === image.fileVersion && !image.packing;
  const all = unsafeWords(image, ctx.guest.allocator);
  const straightWords = direct ? straight : new Uint32Array(straight.length);
  const otherWords = new Uint32Array(all.length);
  for (let w = 0; w < otherWords.length; w++) otherWords[w] = (all[w]! & ~straightWords[w]! & ~(skip?.[w] ?? 0)) >>> 0;
  const straightRuns = runsOfWords(straightWords, frames);
  const otherRuns = runsOfWords(otherWords, frames);
  // Walked together in frame order, each run is the next stretch of image pages, so the
  // page index only counts up (the skipped pages' indexes are stepped over). The straight
  // reads are all submitted first, so that the pool reads them while this thread reads and
  // checks the other pages.
  const reads: Array<Promise<void>> = [];
  const others: number[] = []; // [first pfn, count, first image index] of each other run
  let index = 0;
  let loadedPages = 0;
  let a = 0;
  let b = 0;
  try {
    while (a < straightRuns.length || b < otherRuns.length) {
      const isStraight = b >= otherRuns.length || (a < straightRuns.length && straightRuns[a]! < otherRuns[b]!);
      const runs = isStraight ? straightRuns : otherRuns;
      const at = isStraight ? a : b;
      const first = runs[at]!;
      const count = runs[at + 1]!;
      if (isStraight) a += 2;
      else b += 2;
      if (skip) index = firstAtOrAbove(pfns, first); // skipped pages lie between runs
      loadedPages += count;
      if (!isStraight) {
        others.push(first, count, index);
        index += count;
        continue;
      }
      for (let done = 0; done < count; done += CHUNK_PAGES) {
        const n = Math.min(CHUNK_PAGES, count - done);
        const pfn = first + done;
        const i = index + done;
        const into = ram.subarray(pfn * PAGE_SIZE, (pfn + n) * PAGE_SIZE);
        reads.push(swap.readAtAsync(into, image.dataOffset + i * PAGE_SIZE).then((got) => {
          if (got !== into.length) throw new RestoreRefusedError(`image on ${swap.path} ended while loading page ${i + got / PAGE_SIZE}`);
          loaded += n;
          phase.update(loaded);
        }));
      }
      index += count;
    }
    // Sized for what the other runs need: allocating it zero-fills it.
    const chunk = new Uint8Array(Math.min(CHUNK_PAGES, countBits(otherWords)) * PAGE_SIZE);
    for (let r = 0; r < others.length; r += 3) {
      const first = others[r]!;
      const count = others[r + 1]!;
      for (let done = 0; done < count; ) {
        const n = Math.min(CHUNK_PAGES, count - done);
        const data = reader.readPages(others[r + 2]! + done, n, chunk.subarray(0, n * PAGE_SIZE));
        for (let k = 0; k < n; k++) other(first + done + k, data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE), others[r + 2]! + done + k);
        done += n;
        loaded += n;
        phase.update(loaded);
      }
    }
  } catch (err) {
    await Promise.allSettled(reads); // no read may still be writing into guest memory when we give up
    throw err;
  }
  let skipped = 0;
  if (skip) for (let w = 0; w < skip.length; w++) skipped += popcount((skip[w]! & all[w]!) >>> 0);
  if (loadedPages + skipped !== pfns.length) throw new RestoreRefusedError(`internal: the load's runs cover ${loadedPages} of the image's ${pfns.length} pages (${skipped} left to the caller)`);
  const failed = (await Promise.allSettled(reads)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  // Written while we loaded? Then the straight reads are checked against the CRCs now.
  if (direct && swap.version() !== image.fileVersion) {
    const ram = m.ram; // again: the awaits above let the event loop turn (docs/V86.md)
    for (let k = 0; k < pfns.length; k++) {
      const p = pfns[k]!;
      if ((straightWords[p >>> 5]! >>> (p & 31)) & 1 && (crc32(ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)) >>> 0) !== image.crcs[k]) {
        throw new RestoreRefusedError(`page ${k} (PFN ${hex(p)}) changed on ${swap.path} while it was being loaded`);
      }
    }
  }
  phase.end();
}

/** The index of the first entry of `ascending` that is >= `limit` (its length if none): binary search. */
function firstAtOrAbove(ascending: Uint32Array, limit: number): number {
  let lo = 0;
  let hi = ascending.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ascending[mid]! < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Builds, in frame `pfn`, the page directory a paging-on trampoline copies through:
 * lowmem (0 .. lowmemBytes, rounded up to 4 MiB) mapped 1:1 with 4 MiB pages, writable,
 * supervisor; nothing else (Linux's 32-bit resume_pg_dir). Frames above lowmem are out
 * of its reach.
 */
export function resumePageDirectory(guest: Guest, pfn: number, lowmemBytes: number): void {
  const ram32 = guest.machine.ram32;
  const base = (pfn * PAGE_SIZE) >>> 2;
  ram32.fill(0, base, base + 1024);
  const LARGE = 4 << 20;
  for (let i = 0; i * LARGE < lowmemBytes; i++) ram32[base + i] = (i * LARGE + (PTE.PAGE_SIZE | PTE.WRITABLE | PTE.PRESENT)) >>> 0;
}
