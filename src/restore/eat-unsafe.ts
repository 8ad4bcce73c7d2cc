/**
 * eat-unsafe: how swsusp restored an image before 2006, as Rafael J. Wysocki describes it
 * in "swsusp: use less memory during resume" (LKML, April 2006).
 *
 * Every image page is read into a "safe" page: a free frame that is no original location
 * of any image page. The page allocator cannot be told to hand out safe pages only, so
 * the restore asks it for one page at a time; a page that turns out to be an original
 * location ("unsafe") is eaten: kept allocated, unused, so that the allocator does not
 * hand it out again, and another is asked for, until a safe one comes up. The PBE list
 * and the trampoline get safe pages the same way. At the end the trampoline copies every
 * page from its safe page to its original frame: one copy per image page.
 *
 *   boot kernel's free frames, in the allocator's order from its hint:
 *     [unsafe][unsafe][safe][unsafe][safe][safe] ...
 *        eaten  eaten  copy1  eaten  copy2 PBE  ...
 *   memory taken: every image page's copy + PBE pages + trampoline + every unsafe frame
 *   met on the way (eaten); nothing is loaded in place.
 *
 * The plan replays the allocator's search on the harness's private view, so that a
 * boot kernel without enough safe frames is refused before any is taken.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import type { GuestAllocator } from '../machine/allocator.ts';
import { frameMask } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { checkSameKernel, loadImage, PbeList, relocateTrampoline, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError } from './strategy.ts';

/** What the one-page-at-a-time allocation would take: safe pages wanted, unsafe frames eaten on the way, allocations made. */
export interface EatPlan {
  readonly safeWanted: number;
  readonly eaten: number;
  readonly allocations: number;
}

/**
 * Replays the guest allocator's search (first free frame at or after its hint, wrapping)
 * until `safeWanted` free frames that are not set in `unsafe` were met, counting the
 * unsafe ones met before; undefined when there are not that many safe free frames.
 */
export function planEating(alloc: GuestAllocator, unsafe: Uint32Array, safeWanted: number): EatPlan | undefined {
  const bm = alloc.bitmap;
  const words = bm.length;
  const frames = alloc.frameCount;
  let start = alloc.nextHint;
  if (start >= frames) start = 0;
  const w0 = start >>> 5;
  let safe = 0;
  let eaten = 0;
  for (let k = 0; k <= words && safe < safeWanted; k++) {
    const w = (w0 + k) % words;
    let free = (~bm[w]! & frameMask(w, frames)) >>> 0;
    if (k === 0) free = (free & ~((1 << (start & 31)) - 1)) >>> 0; // below the hint: on the wrap
    else if (k === words) free = (free & ((1 << (start & 31)) - 1)) >>> 0;
    while (free !== 0 && safe < safeWanted) {
      const bit = (free & -free) >>> 0;
      free = (free & ~bit) >>> 0;
      if ((unsafe[w]! & bit) !== 0) eaten++;
      else safe++;
    }
  }
  return safe < safeWanted ? undefined : { safeWanted, eaten, allocations: safeWanted + eaten };
}

export const eatUnsafe = defineRestoreStrategy({
  name: 'eat-unsafe',
  description: 'allocate page by page until a safe page comes up, eating unsafe ones; read every page into a safe page; the trampoline copies everything',
  origin: 'swsusp before 2006, as Rafael J. Wysocki describes it in "swsusp: use less memory during resume", LKML April 2006',
  options: declareOptions({}),
  stats: declareStats({
    allocations: { kind: 'count', help: 'single-page allocations from the boot kernel\'s allocator' },
    pagesEaten: { kind: 'pages', help: 'unsafe frames allocated on the way to a safe one, kept and unused' },
    copies: { kind: 'pages', help: 'pages the trampoline copies from a safe page to their original frame' },
  }),

  plan(ctx) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    checkSameKernel(image, guest.bootInfo);
    const unsafe = unsafeWords(image, alloc);
    const pages = image.pfns.length;
    const pbePages = PbeList.pagesFor(pages);
    const wanted = pages + pbePages + 1;
    const eat = planEating(alloc, unsafe, wanted);
    if (!eat) {
      let safeFree = 0;
      const bm = alloc.bitmap;
      for (let w = 0; w < bm.length; w++) {
        const x = (~bm[w]! & ~unsafe[w]! & frameMask(w, alloc.frameCount)) >>> 0;
        for (let y = x; y; y = (y & (y - 1)) >>> 0) safeFree++;
      }
      throw new RestoreRefusedError(
        `cannot restore with eat-unsafe: every one of the ${pages} image pages needs a safe page, plus ${pbePages} PBE pages and a trampoline page (${wanted} in all), ` +
          `but only ${safeFree} free frames are not original locations of image pages`,
        { pages, wanted, safeFree },
      );
    }
    return { unsafe, pages, pbePages, eat };
  },

  async load(ctx, plan) {
    const { guest } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const unsafe = plan.unsafe;
    const isUnsafe = (pfn: number) => ((unsafe[pfn >>> 5]! >>> (pfn & 31)) & 1) === 1;
    // One page at a time: an unsafe frame is eaten (kept, unused), until a safe one comes up.
    let allocations = 0;
    let eaten = 0;
    const safePage = (): number => {
      for (;;) {
        const pfn = alloc.allocPage(OWNERS.SNAPSHOT.value);
        if (pfn === undefined) throw new RestoreRefusedError(`internal: the allocator ran out after ${allocations} allocations (the plan said ${plan.eat.allocations})`);
        allocations++;
        if (!isUnsafe(pfn)) return pfn;
        eaten++;
      }
    };
    const trampoline = safePage();
    const pbePages = Uint32Array.from({ length: plan.pbePages }, safePage);
    const pbeList = new PbeList(m, pbePages);
    const ram = m.ram;
    await loadImage(ctx, new Uint32Array(unsafe.length), (pfn, page) => {
      const copy = safePage();
      ram.set(page, copy * PAGE_SIZE);
      pbeList.add(copy, pfn);
    });
    if (allocations !== plan.eat.allocations || eaten !== plan.eat.eaten) {
      throw new RestoreRefusedError(`internal: the plan said ${plan.eat.allocations} allocations, ${plan.eat.eaten} eaten; the load made ${allocations}, ${eaten}`);
    }
    return {
      decision: { resume: true, trampoline: relocateTrampoline(guest, trampoline), pbeHead: pbeList.head, context: guest.bootInfo.saved_context },
      inPlacePages: 0,
      pbes: pbeList.count,
      stats: { allocations, pagesEaten: eaten, copies: pbeList.count },
      inPlace: new Uint32Array(unsafe.length),
    };
  },
});
