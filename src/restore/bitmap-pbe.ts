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
 */
import { declareOptions, declareStats } from '../declarations.ts';
import { bitmapPages } from '../pages/memory-bitmap.ts';
import { PAGE_SIZE } from '../units.ts';
import { allocationPass, checkSameKernel, claimUnsafeBitmap, freeOriginals, loadImage, PbeList, relocateTrampoline, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError } from './strategy.ts';

export { PBES_PER_PAGE } from './parts.ts';

export const bitmapPbe = defineRestoreStrategy({
  name: 'bitmap-pbe',
  description: 'unsafe frames in a bitmap, one allocation pass, in-place loads where the original frame is free, safe pages + PBE list for the rest',
  origin: 'Rafael J. Wysocki, "swsusp: Use memory bitmaps during resume", LKML August 2006',
  options: declareOptions({}),
  stats: declareStats({
    safePages: { kind: 'pages', help: 'safe pages taken: copies of the pages loaded elsewhere, PBE pages, the trampoline page' },
    bitmapPages: { kind: 'pages', help: 'pages of the unsafe-frame bitmap' },
  }),

  plan(ctx) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    checkSameKernel(image, guest.bootInfo);
    const unsafe = unsafeWords(image, alloc);
    const inPlace = freeOriginals(unsafe, alloc);
    const pbes = image.pfns.length - inPlace.count;
    const pbePages = PbeList.pagesFor(pbes);
    const bmPages = bitmapPages(alloc.frameCount);
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
    return { unsafe, inPlace, pbes, pbePages, bmPages, safeNeeded };
  },

  async load(ctx, plan) {
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
      stats: { safePages: taken.safe.length, bitmapPages: plan.bmPages },
      inPlace: plan.inPlace.words,
    };
  },
});
