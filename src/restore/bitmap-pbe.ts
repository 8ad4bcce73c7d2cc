/**
 * bitmap-pbe: the restore of seed 001 (Linux snapshot.c's prepare_image and
 * get_buffer, without highmem).
 *
 * The boot kernel is running the same build the image came from, but its own memory
 * sits in some of the frames the image must fill. So:
 *
 *   1. plan on the harness's private view, touching nothing: which image pages have
 *      a free original frame (load in place), which need a safe page (a free frame
 *      that is no original location of any image page), and whether there are
 *      enough safe pages for those, for the PBE list, for the unsafe bitmap and for
 *      the trampoline; if not, refuse;
 *   2. mark every original frame in an "unsafe" memory bitmap kept in guest frames;
 *   3. one pass over the boot kernel's free frames: a frame marked unsafe is taken
 *      for its own page (in place), any other is taken as a safe page while safe pages
 *      are still needed;
 *   4. stream the image in: in-place pages to their frames, the others to safe pages,
 *      each with a PBE (address of the copy, original address, next) in guest memory;
 *   5. copy the position-independent trampoline into a safe page.
 *
 * The guest then jumps to the trampoline, which (paging off) copies every PBE's page
 * to its original frame and loads the saved context: the point of no return.
 */
import { crc32 } from '../image/crc.ts';
import { OWNERS, STRUCTS } from '../abi.ts';
import { ImageReader } from '../image/index.ts';
import { countBits, frameMask, popcount, runsOfWords } from '../pages/page-set.ts';
import { bitmapPages, MemoryBitmap } from '../pages/memory-bitmap.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { RestoreRefusedError, type RestoreContext, type RestorePlan, type RestoreStrategy } from './strategy.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

const PBE_BYTES = STRUCTS.pbe.size;
export const PBES_PER_PAGE = Math.floor(PAGE_SIZE / PBE_BYTES);
/** Pages read from the image per chunk. */
const CHUNK_PAGES = 2048;

export const bitmapPbe: RestoreStrategy = {
  name: 'bitmap-pbe',
  description: 'unsafe frames in a bitmap, one allocation pass, in-place loads where the original frame is free, safe pages + PBE list for the rest',
  async prepare(ctx: RestoreContext): Promise<RestorePlan> {
    const { guest, image, progress } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const bi = guest.bootInfo;
    const frames = alloc.frameCount;
    const pfns = image.pfns;
    const timer = new PhaseTimer();

    // 1. Plan (nothing written).
    const plan = await timer.time('plan', () => {
      if (image.header.context.address !== bi.saved_context) {
        throw new RestoreRefusedError(
          `image's saved context is at ${hex(image.header.context.address)} but this kernel's is at ${hex(bi.saved_context)}: not the same kernel layout`,
        );
      }
      const trampolineBytes = bi.trampoline_end - bi.trampoline_start;
      if (trampolineBytes <= 0 || trampolineBytes > PAGE_SIZE) throw new RestoreRefusedError(`trampoline of ${trampolineBytes} bytes does not fit one page`);
      // The original frames as bitmap words (the unsafe bitmap's content); an original
      // frame the boot kernel has free is loaded in place. Word-wise: these loops run once
      // per resume, cold, so every iteration saved counts.
      const bm = alloc.bitmap;
      const beyond = firstAtOrAbove(pfns, frames);
      if (beyond < pfns.length) throw new RestoreRefusedError(`image page ${beyond} belongs to frame ${hex(pfns[beyond]!)}, beyond this machine's ${frames} frames`);
      // Validation made the PFNs into words already (all below `frames`, so a shorter or
      // longer word array only differs in words that are zero).
      const unsafeWords = new Uint32Array(bm.length);
      unsafeWords.set(image.pfnWords.subarray(0, bm.length));
      const inPlaceWords = new Uint32Array(bm.length);
      let inPlace = 0;
      for (let w = 0; w < bm.length; w++) {
        const bits = (unsafeWords[w]! & ~bm[w]!) >>> 0;
        inPlaceWords[w] = bits;
        if (bits !== 0) inPlace += popcount(bits);
      }
      const pbes = pfns.length - inPlace;
      const pbePages = Math.ceil(pbes / PBES_PER_PAGE);
      const bmPages = bitmapPages(frames);
      const safeNeeded = pbes + pbePages + bmPages + 1;
      const safeFree = alloc.freeCount - inPlace;
      if (safeNeeded > safeFree) {
        throw new RestoreRefusedError(
          `cannot restore: ${pbes} image pages have their original frame in use by the boot kernel and need safe pages, ` +
            `plus ${pbePages} PBE pages, ${bmPages} bitmap pages and a trampoline page (${safeNeeded} in all), ` +
            `but only ${safeFree} free frames are not original locations of image pages`,
          { pbes, safeNeeded, safeFree },
        );
      }
      return { unsafeWords, inPlaceWords, inPlace, pbes, pbePages, bmPages, safeNeeded };
    });

    // 2. + 3. The unsafe bitmap, then one allocation pass.
    const taken = await timer.time('allocate', () => {
      const bm = alloc.bitmap;
      const words = bm.length;
      // The unsafe bitmap's own pages: the lowest free frames that are no original location.
      const claim = new Uint32Array(words);
      const bmFrames = new Uint32Array(plan.bmPages);
      let nBm = 0;
      for (let w = 0; w < words && nBm < plan.bmPages; w++) {
        let other = (~bm[w]! & ~plan.unsafeWords[w]! & frameMask(w, frames)) >>> 0;
        while (other !== 0 && nBm < plan.bmPages) {
          const bit = (other & -other) >>> 0;
          other = (other & ~bit) >>> 0;
          claim[w] = (claim[w]! | bit) >>> 0;
          bmFrames[nBm++] = w * 32 + 31 - Math.clz32(bit);
        }
      }
      if (nBm !== plan.bmPages) throw new RestoreRefusedError(`internal: planned ${plan.bmPages} bitmap pages, found ${nBm} frames for them`);
      alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
      const unsafeBm = new MemoryBitmap(m, bmFrames, frames);
      unsafeBm.clear();
      unsafeBm.setWords(plan.unsafeWords);
      // One pass, word by word, reading the unsafe bitmap from guest memory: a free frame
      // marked unsafe is loaded in place, any other free one is a safe page while needed.
      claim.fill(0);
      const safeWanted = plan.safeNeeded - plan.bmPages;
      const safe = new Uint32Array(safeWanted);
      let nInPlace = 0;
      let nSafe = 0;
      for (let w = 0; w < words; w++) {
        const free = (~bm[w]! & frameMask(w, frames)) >>> 0;
        if (free === 0) continue;
        const unsafeWord = unsafeBm.word(w);
        const own = (free & unsafeWord) >>> 0;
        claim[w] = own;
        if (own !== 0) nInPlace += popcount(own);
        let other = (free & ~unsafeWord) >>> 0;
        while (other !== 0 && nSafe < safeWanted) {
          const bit = (other & -other) >>> 0;
          other = (other & ~bit) >>> 0;
          claim[w] = (claim[w]! | bit) >>> 0;
          safe[nSafe++] = w * 32 + 31 - Math.clz32(bit);
        }
      }
      if (nInPlace !== plan.inPlace || nSafe !== safeWanted) {
        throw new RestoreRefusedError(`internal: planned ${plan.inPlace} in-place and ${safeWanted} safe frames, found ${nInPlace} and ${nSafe}`);
      }
      alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
      return { bmFrames, inPlace: nInPlace, safe };
    });

    const trampolinePfn = taken.safe[0]!;
    const pbePagePfns = taken.safe.slice(1, 1 + plan.pbePages);
    const dataSafe = taken.safe.slice(1 + plan.pbePages);

    // 4. Load.
    let pbeCount = 0;
    await timer.time('load', async () => {
      const reader = new ImageReader(image, ctx.swap);
      const ram = m.ram;
      const ram32 = m.ram32;
      const phase = progress.phase('load image', pfns.length);
      let nextSafe = 0;
      let prevPbeAddr = 0;
      let loaded = 0;
      const inPlaceWords = plan.inPlaceWords;
      const loadInPlace = (pfn: number): boolean => ((inPlaceWords[pfn >>> 5]! >>> (pfn & 31)) & 1) === 1;
      // Runs of in-place pages go from the file straight into their frames when the file
      // is provably the one validated; everything else through the checking reader.
      const direct = ctx.swap.version() === image.fileVersion;
      // Run by run, not page by page: the image's frames split into the runs loaded in
      // place and the others. Walked together in frame order, each run is the next
      // stretch of image pages, so the page index only counts up.
      const straightWords = direct ? inPlaceWords : new Uint32Array(inPlaceWords.length);
      const otherWords = new Uint32Array(plan.unsafeWords.length);
      for (let w = 0; w < otherWords.length; w++) otherWords[w] = (plan.unsafeWords[w]! & ~straightWords[w]!) >>> 0;
      const straightRuns = runsOfWords(straightWords, frames);
      const otherRuns = runsOfWords(otherWords, frames);
      // Those straight reads run on libuv's thread pool, several at once (the pool has four
      // threads): on two cores that loaded 232 MiB in 24–34 ms instead of 42–55 ms. They are
      // all submitted first; the other pages are then read and checked on this thread while
      // the pool works, instead of holding back the straight reads that follow them.
      const reads: Array<Promise<void>> = [];
      const others: number[] = []; // [first pfn, count, first image index] of each other run
      let index = 0;
      let a = 0;
      let b = 0;
      try {
        while (a < straightRuns.length || b < otherRuns.length) {
          const straight = b >= otherRuns.length || (a < straightRuns.length && straightRuns[a]! < otherRuns[b]!);
          const runs = straight ? straightRuns : otherRuns;
          const at = straight ? a : b;
          const first = runs[at]!;
          const count = runs[at + 1]!;
          if (straight) a += 2;
          else b += 2;
          if (!straight) {
            others.push(first, count, index);
            index += count;
            continue;
          }
          for (let done = 0; done < count; done += CHUNK_PAGES) {
            const n = Math.min(CHUNK_PAGES, count - done);
            const pfn = first + done;
            const i = index + done;
            const into = ram.subarray(pfn * PAGE_SIZE, (pfn + n) * PAGE_SIZE);
            reads.push(ctx.swap.readAtAsync(into, image.dataOffset + i * PAGE_SIZE).then((got) => {
              if (got !== into.length) throw new RestoreRefusedError(`image on ${ctx.swap.path} ended while loading page ${i + got / PAGE_SIZE}`);
              loaded += n;
              phase.update(loaded);
            }));
          }
          index += count;
        }
        // Sized for what the other runs need (allocating it zero-fills it: 8 MiB cost 2–4 ms).
        const chunk = new Uint8Array(Math.min(CHUNK_PAGES, countBits(otherWords)) * PAGE_SIZE);
        for (let r = 0; r < others.length; r += 3) {
          const first = others[r]!;
          const count = others[r + 1]!;
          for (let done = 0; done < count; ) {
            const n = Math.min(CHUNK_PAGES, count - done);
            const pfn = first + done;
            const data = reader.readPages(others[r + 2]! + done, n, chunk.subarray(0, n * PAGE_SIZE));
            for (let k = 0; k < n; k++) {
              const p = pfn + k;
              const page = data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
              if (loadInPlace(p)) {
                ram.set(page, p * PAGE_SIZE);
                continue;
              }
              const copy = dataSafe[nextSafe++]!;
              ram.set(page, copy * PAGE_SIZE);
              const pbeAddr = pbePagePfns[Math.floor(pbeCount / PBES_PER_PAGE)]! * PAGE_SIZE + (pbeCount % PBES_PER_PAGE) * PBE_BYTES;
              ram32[pbeAddr >>> 2] = copy * PAGE_SIZE;
              ram32[(pbeAddr >>> 2) + 1] = p * PAGE_SIZE;
              ram32[(pbeAddr >>> 2) + 2] = 0;
              if (prevPbeAddr) ram32[(prevPbeAddr >>> 2) + 2] = pbeAddr;
              prevPbeAddr = pbeAddr;
              pbeCount++;
            }
            done += n;
            loaded += n;
            phase.update(loaded);
          }
        }
      } catch (err) {
        await Promise.allSettled(reads); // no read may still be writing into guest memory when we give up
        throw err;
      }
      if (index !== pfns.length) throw new RestoreRefusedError(`internal: the load's runs cover ${index} of the image's ${pfns.length} pages`);
      const failed = (await Promise.allSettled(reads)).find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      // Written while we loaded? Then the direct reads are checked against the CRCs now.
      if (direct && ctx.swap.version() !== image.fileVersion) {
        for (let k = 0; k < pfns.length; k++) {
          const p = pfns[k]!;
          if (loadInPlace(p) && (crc32(ram.subarray(p * PAGE_SIZE, p * PAGE_SIZE + PAGE_SIZE)) >>> 0) !== image.crcs[k]) {
            throw new RestoreRefusedError(`page ${k} (PFN ${hex(p)}) changed on ${ctx.swap.path} while it was being loaded`);
          }
        }
      }
      phase.end();
      if (pbeCount !== plan.pbes) throw new RestoreRefusedError(`internal: planned ${plan.pbes} PBEs, built ${pbeCount}`);
      // 5. The trampoline, relocated into a safe page.
      m.write(trampolinePfn * PAGE_SIZE, m.view(bi.trampoline_start, bi.trampoline_end - bi.trampoline_start).slice());
      m.clearJitCache();
      m.flushTlb();
    });

    const pbeHead = pbeCount > 0 ? pbePagePfns[0]! * PAGE_SIZE : 0;
    return {
      decision: { resume: true, trampoline: trampolinePfn * PAGE_SIZE, pbeHead, context: bi.saved_context },
      report: {
        strategy: 'bitmap-pbe',
        pagesLoaded: pfns.length,
        inPlacePages: plan.inPlace,
        pbes: pbeCount,
        snapshotFrames: taken.bmFrames.length + taken.inPlace + taken.safe.length,
        phasesMs: timer.phases,
      },
    };
  },
};

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
