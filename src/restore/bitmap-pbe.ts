/**
 * bitmap-pbe: the restore of Rafael J. Wysocki's "swsusp: Use memory bitmaps during
 * resume" (LKML, August 2006): Linux snapshot.c's prepare_image and get_buffer, without
 * highmem.
 *
 * The boot kernel is running the same build the image came from, but its own memory
 * sits in some of the frames the image must fill. So:
 *
 *   plan  (nothing written) which image pages have a free original frame (load in
 *         place), which need a safe page (a free frame that is no original location of
 *         any image page), and whether there are enough safe pages for those, for the PBE
 *         list, for the unsafe bitmap and for the trampoline; if not, refuse;
 *   load  mark every original frame in an "unsafe" memory bitmap kept in guest frames;
 *         one pass over the boot kernel's free frames: a frame marked unsafe is taken
 *         for its own page (in place), any other is taken as a safe page while safe
 *         pages are still needed; stream the image in: in-place pages to their frames,
 *         the others to safe pages, each with a PBE (address of the copy, original
 *         address, next) in guest memory; copy the position-independent trampoline into
 *         a safe page.
 *
 * The guest then jumps to the trampoline, which (paging off) copies every PBE's page to
 * its original frame and loads the saved context: the point of no return.
 *
 * Highmem (the variant of the same thread: Pavel Machek and Rafael J. Wysocki, August
 * 2006). When the boot kernel maps only lowmem for good (lowmem=), the trampoline runs
 * with paging on, on a page directory of its own in a safe page that maps lowmem 1:1
 * (as Linux's 32-bit restore does): it cannot reach a frame above lowmem. So the PBEs
 * come in two lists: pages whose original frame is in lowmem, with their copies, the
 * PBE pages of both lists, the page directory and the trampoline in lowmem safe pages,
 * for the trampoline; pages whose original frame is in highmem, with their copies in
 * highmem safe pages where there are enough, for "some C code a bit earlier": the boot
 * kernel copies them through its temporary mappings just before it enters the
 * trampoline (resume_enter, docs/GUEST.md).
 *
 *   lowmem:  [boot kernel][in place][safe: low copies, PBE pages, page dir, trampoline]
 *   highmem: [boot kernel's cache][in place][safe: highmem copies]
 */
import { declareOptions, declareStats } from '../declarations.ts';
import { bitmapPages } from '../pages/memory-bitmap.ts';
import type { GuestAllocator } from '../machine/allocator.ts';
import { frameMask, popcount } from '../pages/page-set.ts';
import { mibText, PAGE_SIZE } from '../units.ts';
import { allocationPass, checkSameKernel, claimUnsafeBitmap, freeOriginals, loadImage, PbeList, relocateTrampoline, resumePageDirectory, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError, type RestoreContext } from './strategy.ts';

export { PBES_PER_PAGE } from './parts.ts';

export const bitmapPbe = defineRestoreStrategy({
  name: 'bitmap-pbe',
  description: 'unsafe frames in a bitmap, one allocation pass, in-place loads where the original frame is free, safe pages + PBE list for the rest',
  origin: 'Rafael J. Wysocki, "swsusp: Use memory bitmaps during resume", LKML August 2006',
  options: declareOptions({}),
  stats: declareStats({
    safePages: { kind: 'pages', help: 'safe pages taken: copies of the pages loaded elsewhere, PBE pages, the trampoline page (and the resume page directory, with highmem)' },
    bitmapPages: { kind: 'pages', help: 'pages of the unsafe-frame bitmap' },
    lowmemPbes: { kind: 'pages', help: 'with highmem: the PBEs the trampoline copies (original frame in lowmem)' },
    highmemPbes: { kind: 'pages', help: 'with highmem: the PBEs the boot kernel copies itself, through temporary mappings, before the trampoline (original frame in highmem)' },
    highmemCopiesInLowmem: { kind: 'pages', help: 'with highmem: copies of highmem pages that had to go into lowmem safe pages (highmem had too few)' },
  }),

  plan(ctx) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    checkSameKernel(image, guest.bootInfo);
    const unsafe = unsafeWords(image, alloc);
    const inPlace = freeOriginals(unsafe, alloc);
    const pbes = image.pfns.length - inPlace.count;
    const bmPages = bitmapPages(alloc.frameCount);
    const bi = guest.bootInfo;
    const lowFrames = Math.min(alloc.frameCount, Math.floor((bi.lowmem_bytes || bi.ram_bytes) / PAGE_SIZE));
    if (lowFrames < alloc.frameCount) return planHighmem(alloc, image.pfns, unsafe, inPlace, pbes, bmPages, lowFrames);
    const pbePages = PbeList.pagesFor(pbes);
    const safeNeeded = pbes + pbePages + bmPages + 1;
    const safeFree = alloc.freeCount - inPlace.count;
    if (safeNeeded > safeFree) {
      throw new RestoreRefusedError(
        `cannot restore: ${pbes} image pages have their original frame in use by the boot kernel and need safe pages, ` +
          `plus ${pbePages} PBE pages, ${bmPages} bitmap pages and a trampoline page (${safeNeeded} in all), ` +
          `but only ${safeFree} free frames are not original locations of image pages`,
        { pbes, safeNeeded, safeFree },
      );
    }
    return { unsafe, inPlace, pbes, pbePages, bmPages, safeNeeded } as Plan;
  },

  async load(ctx, plan) {
    if (plan.highmem) return loadHighmem(ctx, plan, plan.highmem);
    const { guest } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const unsafeBm = claimUnsafeBitmap(guest, plan.unsafe);
    const taken = allocationPass(alloc, unsafeBm, plan.safeNeeded - plan.bmPages);
    if (taken.inPlace !== plan.inPlace.count) throw new RestoreRefusedError(`internal: planned ${plan.inPlace.count} in-place frames, found ${taken.inPlace}`);
    const trampoline = taken.safe[0]!;
    const pbeList = new PbeList(m, taken.safe.subarray(1, 1 + plan.pbePages));
    const dataSafe = taken.safe.subarray(1 + plan.pbePages);
    const inPlaceWords = plan.inPlace.words;
    const ram = m.ram;
    let nextSafe = 0;
    await loadImage(ctx, inPlaceWords, (pfn, page) => {
      if ((inPlaceWords[pfn >>> 5]! >>> (pfn & 31)) & 1) {
        ram.set(page, pfn * PAGE_SIZE);
        return;
      }
      const copy = dataSafe[nextSafe++]!;
      ram.set(page, copy * PAGE_SIZE);
      pbeList.add(copy, pfn);
    });
    if (pbeList.count !== plan.pbes) throw new RestoreRefusedError(`internal: planned ${plan.pbes} PBEs, built ${pbeList.count}`);
    return {
      decision: { resume: true, trampoline: relocateTrampoline(guest, trampoline), pbeHead: pbeList.head, context: guest.bootInfo.saved_context },
      inPlacePages: plan.inPlace.count,
      pbes: pbeList.count,
      stats: { safePages: taken.safe.length, bitmapPages: plan.bmPages, lowmemPbes: pbeList.count, highmemPbes: 0, highmemCopiesInLowmem: 0 },
      inPlace: plan.inPlace.words,
    };
  },
});

interface Plan {
  readonly unsafe: Uint32Array;
  readonly inPlace: { readonly words: Uint32Array; readonly count: number };
  readonly pbes: number;
  readonly pbePages: number;
  readonly bmPages: number;
  readonly safeNeeded: number;
  readonly highmem?: HighmemPlan;
}

interface HighmemPlan {
  readonly lowFrames: number;
  readonly lowPbes: number;
  readonly highPbes: number;
  readonly lowPbePages: number;
  readonly highPbePages: number;
  /** Lowmem safe pages: low copies, both lists' PBE pages, the page directory, the trampoline. */
  readonly lowSafe: number;
}

/** The plan for a boot kernel with highmem: two PBE lists, and lowmem enough for everything the trampoline needs. */
function planHighmem(alloc: GuestAllocator, pfns: Uint32Array, unsafe: Uint32Array, inPlace: Plan['inPlace'], pbes: number, bmPages: number, lowFrames: number): Plan {
  let lowPbes = 0;
  for (let i = 0; i < pfns.length && pfns[i]! < lowFrames; i++) {
    const pfn = pfns[i]!;
    if (!((inPlace.words[pfn >>> 5]! >>> (pfn & 31)) & 1)) lowPbes++;
  }
  const highPbes = pbes - lowPbes;
  const lowPbePages = PbeList.pagesFor(lowPbes);
  const highPbePages = PbeList.pagesFor(highPbes);
  const lowSafe = lowPbes + lowPbePages + highPbePages + 2;
  // Safe frames: free, no original location; in lowmem, and in all.
  const bm = alloc.bitmap;
  let lowFree = 0;
  let allFree = 0;
  for (let w = 0; w < bm.length; w++) {
    const safe = (~bm[w]! & ~unsafe[w]! & frameMask(w, alloc.frameCount)) >>> 0;
    allFree += popcount(safe);
    lowFree += popcount((safe & frameMask(w, lowFrames)) >>> 0);
  }
  const lowmem = mibText(lowFrames * PAGE_SIZE);
  // The unsafe bitmap's pages come first, from the lowest safe frames.
  if (lowSafe + bmPages > lowFree) {
    throw new RestoreRefusedError(
      `cannot restore: the trampoline copies with paging on, on lowmem (${lowmem}) only, and needs ${lowSafe + bmPages} safe frames there ` +
        `(${lowPbes} copies of lowmem pages, ${lowPbePages + highPbePages} PBE pages, ${bmPages} bitmap pages, the page directory and the trampoline), but lowmem has only ${lowFree}`,
      { lowPbes, highPbes, needed: lowSafe + bmPages, lowFree },
    );
  }
  if (lowSafe + bmPages + highPbes > allFree) {
    throw new RestoreRefusedError(
      `cannot restore: ${pbes} image pages have their original frame in use by the boot kernel (${highPbes} of them in highmem) and need safe pages, ` +
        `${lowSafe + bmPages + highPbes} safe frames in all, but only ${allFree} free frames are not original locations of image pages`,
      { lowPbes, highPbes, needed: lowSafe + bmPages + highPbes, allFree },
    );
  }
  return { unsafe, inPlace, pbes, pbePages: lowPbePages + highPbePages, bmPages, safeNeeded: lowSafe + bmPages + highPbes, highmem: { lowFrames, lowPbes, highPbes, lowPbePages, highPbePages, lowSafe } };
}

async function loadHighmem(ctx: RestoreContext, plan: Plan, hm: HighmemPlan) {
  const { guest } = ctx;
  const m = guest.machine;
  const alloc = guest.allocator;
  const unsafeBm = claimUnsafeBitmap(guest, plan.unsafe);
  const taken = allocationPass(alloc, unsafeBm, hm.lowSafe, { lowFrames: hm.lowFrames, wanted: hm.highPbes });
  if (taken.inPlace !== plan.inPlace.count) throw new RestoreRefusedError(`internal: planned ${plan.inPlace.count} in-place frames, found ${taken.inPlace}`);
  const low = taken.safe;
  const trampoline = low[0]!;
  const pageDirectory = low[1]!;
  const lowList = new PbeList(m, low.subarray(2, 2 + hm.lowPbePages));
  const highList = new PbeList(m, low.subarray(2 + hm.lowPbePages, 2 + hm.lowPbePages + hm.highPbePages));
  const lowCopies = low.subarray(2 + hm.lowPbePages + hm.highPbePages);
  const highCopies = taken.highSafe;
  const inPlaceWords = plan.inPlace.words;
  const ram = m.ram;
  let nextLow = 0;
  let nextHigh = 0;
  await loadImage(ctx, inPlaceWords, (pfn, page) => {
    if ((inPlaceWords[pfn >>> 5]! >>> (pfn & 31)) & 1) {
      ram.set(page, pfn * PAGE_SIZE);
      return;
    }
    const [copies, list, next] = pfn < hm.lowFrames ? [lowCopies, lowList, nextLow++] : [highCopies, highList, nextHigh++];
    const copy = copies[next]!;
    ram.set(page, copy * PAGE_SIZE);
    list.add(copy, pfn);
  });
  if (lowList.count !== hm.lowPbes || highList.count !== hm.highPbes) {
    throw new RestoreRefusedError(`internal: planned ${hm.lowPbes} + ${hm.highPbes} PBEs, built ${lowList.count} + ${highList.count}`);
  }
  resumePageDirectory(guest, pageDirectory, hm.lowFrames * PAGE_SIZE);
  let copiesInLowmem = 0;
  for (const pfn of highCopies) if (pfn < hm.lowFrames) copiesInLowmem++;
  return {
    decision: {
      resume: true as const, trampoline: relocateTrampoline(guest, trampoline, pageDirectory), pbeHead: lowList.head, highPbeHead: highList.head, context: guest.bootInfo.saved_context,
    },
    inPlacePages: plan.inPlace.count,
    pbes: lowList.count + highList.count,
    stats: { safePages: low.length + highCopies.length, bitmapPages: plan.bmPages, lowmemPbes: lowList.count, highmemPbes: highList.count, highmemCopiesInLowmem: copiesInLowmem },
    inPlace: inPlaceWords,
  };
}
