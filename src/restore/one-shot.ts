/**
 * one-shot: Rafael J. Wysocki's "swsusp: use less memory during resume" (LKML, April
 * 2006). Allocate as many pages as the image needs in one shot, and mark them. Every
 * unsafe frame the allocator hands out is the original location of exactly one image
 * page, so when that page is read it goes straight into its frame: no copy later, and
 * no unsafe page eaten. The other pages go into the allocated safe pages and are copied
 * by the trampoline.
 *
 *   one shot: the N + P + 1 lowest free frames (N image pages, P PBE pages, trampoline)
 *     [unsafe: its own page, in place][safe: a copy + PBE][unsafe: in place] ...
 *   memory taken: exactly N + P + 1 frames; copies: the image pages whose original frame
 *   was not among them.
 *
 * Its report sets its numbers beside what eat-unsafe would do on the same boot kernel
 * and image (eat-unsafe's plan, replayed on the state before the allocation).
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { popcount } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { planEating } from './eat-unsafe.ts';
import { checkSameKernel, loadImage, PbeList, relocateTrampoline, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError } from './strategy.ts';

export const oneShot = defineRestoreStrategy({
  name: 'one-shot',
  description: 'allocate what the image needs in one shot; an allocated frame that is an original location takes its own page in place; the rest through safe pages',
  origin: 'Rafael J. Wysocki, "swsusp: use less memory during resume", LKML April 2006',
  options: declareOptions({}),
  stats: declareStats({
    allocations: { kind: 'count', help: 'frames allocated, all in one shot' },
    copies: { kind: 'pages', help: 'pages the trampoline copies from a safe page to their original frame' },
    eatUnsafeAllocations: { kind: 'count', help: 'allocations eat-unsafe would make on the same boot kernel and image (its plan)' },
    eatUnsafeCopies: { kind: 'pages', help: 'copies eat-unsafe would make (every image page)' },
    allocationsAvoided: { kind: 'count', help: 'eatUnsafeAllocations - allocations' },
    copiesAvoided: { kind: 'pages', help: 'eatUnsafeCopies - copies' },
  }),

  plan(ctx) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    checkSameKernel(image, guest.bootInfo);
    const unsafe = unsafeWords(image, alloc);
    const pages = image.pfns.length;
    // PBE pages for the worst case (every page copied): the shot is made before it is known.
    const pbePages = PbeList.pagesFor(pages);
    const shot = pages + pbePages + 1;
    if (shot > alloc.freeCount) {
      throw new RestoreRefusedError(`cannot restore with one-shot: the image's ${pages} pages, ${pbePages} PBE pages and a trampoline page need ${shot} free frames, the boot kernel has ${alloc.freeCount}`, { pages, shot, free: alloc.freeCount });
    }
    const eat = planEating(alloc, unsafe, pages + PbeList.pagesFor(pages) + 1);
    return { unsafe, pages, pbePages, shot, eat };
  },

  async load(ctx, plan) {
    const { guest } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const taken = alloc.allocMasks(plan.shot, OWNERS.SNAPSHOT.value);
    if (!taken) throw new RestoreRefusedError(`internal: ${plan.shot} frames were free in the plan and not in the load`);
    // The allocated frames that are original locations take their own page; the rest are safe pages.
    const inPlace = new Uint32Array(taken.length);
    const safe: number[] = [];
    let inPlaceCount = 0;
    for (let w = 0; w < taken.length; w++) {
      inPlace[w] = (taken[w]! & plan.unsafe[w]!) >>> 0;
      if (inPlace[w]) inPlaceCount += popcount(inPlace[w]!);
      for (let x = (taken[w]! & ~plan.unsafe[w]!) >>> 0; x; x = (x & (x - 1)) >>> 0) safe.push(w * 32 + 31 - Math.clz32(x & -x));
    }
    const copies = plan.pages - inPlaceCount;
    const pbePages = PbeList.pagesFor(copies);
    if (safe.length < copies + pbePages + 1) throw new RestoreRefusedError(`internal: ${safe.length} safe frames in the shot for ${copies} copies, ${pbePages} PBE pages and the trampoline`);
    const trampoline = safe[0]!;
    const pbeList = new PbeList(m, Uint32Array.from(safe.slice(1, 1 + pbePages)));
    let next = 1 + pbePages;
    const ram = m.ram;
    await loadImage(ctx, inPlace, (pfn, page) => {
      if ((inPlace[pfn >>> 5]! >>> (pfn & 31)) & 1) {
        ram.set(page, pfn * PAGE_SIZE);
        return;
      }
      const copy = safe[next++]!;
      ram.set(page, copy * PAGE_SIZE);
      pbeList.add(copy, pfn);
    });
    if (pbeList.count !== copies) throw new RestoreRefusedError(`internal: ${copies} copies planned, ${pbeList.count} PBEs built`);
    const eatAllocations = plan.eat?.allocations ?? Number.NaN;
    return {
      decision: { resume: true, trampoline: relocateTrampoline(guest, trampoline), pbeHead: pbeList.head, context: guest.bootInfo.saved_context },
      inPlacePages: inPlaceCount,
      pbes: copies,
      stats: {
        allocations: plan.shot, copies,
        eatUnsafeAllocations: eatAllocations, eatUnsafeCopies: plan.pages,
        allocationsAvoided: eatAllocations - plan.shot, copiesAvoided: plan.pages - copies,
      },
      inPlace,
    };
  },
});
