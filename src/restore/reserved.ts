/**
 * reserved: Maxim Levitsky's resume (LKML, June 2010: "We can just reserve say 25 MB of
 * memory and make resuming kernel only use it for all its needs").
 *
 * Both kernels boot with reserve=R. Until RESUME_CHECK a kernel lives in the region
 * 0 .. R; a normal boot then leaves that region free of anything it cannot lose (its
 * allocator hands out only frames above R: docs/GUEST.md), so what the hibernated kernel
 * keeps in the region is what it put there while booting (low memory, the kernel image,
 * its first page tables and stacks) and whatever the hibernation itself takes. The boot
 * kernel never leaves the region, so every image page whose original frame lies above
 * R finds it free and is loaded in place; only the pages whose frames the boot kernel
 * uses inside the region need a safe page (a free frame of the region that is no
 * original location) and a PBE.
 *
 *   0 ............... R ........................................ RAM
 *   [boot kernel | safe pages, PBEs]  [every image page in place]
 *
 * The plan refuses, with the numbers, when the boot kernel has no reserved region, left
 * it, or when the region has too few safe frames for the pages that need them.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { frameMask, popcount } from '../pages/page-set.ts';
import { hex, mibText, PAGE_SIZE } from '../units.ts';
import { checkSameKernel, freeOriginals, loadImage, PbeList, relocateTrampoline, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError } from './strategy.ts';

export const reserved = defineRestoreStrategy({
  name: 'reserved',
  description: 'the boot kernel lives in a reserved region; every image page outside it loads in place, only pages inside it go through safe pages and PBEs',
  origin: 'Maxim Levitsky, the "suspend module" proposal and its resume, LKML June 2010',
  options: declareOptions({}),
  stats: declareStats({
    regionPages: { kind: 'pages', help: 'frames of the reserved region (reserve=)' },
    regionUsed: { kind: 'pages', help: 'frames of the region the boot kernel uses' },
    pagesInsideRegion: { kind: 'pages', help: 'image pages whose original frame lies inside the region' },
    pagesOutsideRegion: { kind: 'pages', help: 'image pages whose original frame lies above it (all loaded in place)' },
    safePages: { kind: 'pages', help: 'safe pages taken in the region: copies, PBE pages, the trampoline' },
  }),

  plan(ctx) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    const bi = guest.bootInfo;
    checkSameKernel(image, bi);
    const region = Math.floor(bi.reserved_bytes / PAGE_SIZE);
    if (region === 0) {
      throw new RestoreRefusedError('cannot restore with reserved: the boot kernel has no reserved region (boot both kernels with reserve=, e.g. reserveBytes or --reserve 16M)', { region: 0 });
    }
    const bm = alloc.bitmap;
    const frames = alloc.frameCount;
    // The boot kernel confined itself: nothing of it above the region.
    for (let w = region >>> 5; w < bm.length; w++) {
      const above = w * 32 >= region ? frameMask(w, frames) : (frameMask(w, frames) & ~((1 << (region & 31)) - 1)) >>> 0;
      const used = (bm[w]! & above) >>> 0;
      if (used) {
        const pfn = w * 32 + 31 - Math.clz32(used & -used);
        throw new RestoreRefusedError(`cannot restore with reserved: the boot kernel uses frame ${hex(pfn)} (${alloc.owner(pfn)}), outside its reserved region of ${mibText(region * PAGE_SIZE)}`, { region, pfn });
      }
    }
    const unsafe = unsafeWords(image, alloc);
    const inPlace = freeOriginals(unsafe, alloc);
    const pbes = image.pfns.length - inPlace.count;
    const pbePages = PbeList.pagesFor(pbes);
    const wanted = pbes + pbePages + 1;
    // Safe pages: free frames of the region that are no original location.
    const safe: number[] = [];
    let regionUsed = 0;
    for (let w = 0; w * 32 < region; w++) {
      const inRegion = (w + 1) * 32 <= region ? 0xffffffff : ((1 << (region & 31)) - 1) >>> 0;
      regionUsed += popcount((bm[w]! & inRegion) >>> 0);
      for (let x = (~bm[w]! & ~unsafe[w]! & inRegion & frameMask(w, frames)) >>> 0; x && safe.length < wanted; x = (x & (x - 1)) >>> 0) safe.push(w * 32 + 31 - Math.clz32(x & -x));
    }
    if (safe.length < wanted) {
      throw new RestoreRefusedError(
        `cannot restore with reserved: ${pbes} image pages have their original frame inside the reserved region (${mibText(region * PAGE_SIZE)}) in use by the boot kernel; ` +
          `they need ${wanted} safe frames there (with ${pbePages} PBE pages and a trampoline page), but only ${safe.length} free frames of the region are not original locations`,
        { region, pbes, wanted, safe: safe.length },
      );
    }
    let inside = 0;
    for (let i = 0; i < image.pfns.length && image.pfns[i]! < region; i++) inside++;
    return { unsafe, inPlace, pbes, pbePages, safe: Uint32Array.from(safe), region, regionUsed, inside };
  },

  async load(ctx, plan) {
    const { guest, image } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    alloc.claimMasks(plan.inPlace.words, OWNERS.SNAPSHOT.value);
    const claim = new Uint32Array(alloc.bitmap.length);
    for (const pfn of plan.safe) claim[pfn >>> 5] = (claim[pfn >>> 5]! | (1 << (pfn & 31))) >>> 0;
    alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
    const trampoline = plan.safe[0]!;
    const pbeList = new PbeList(m, plan.safe.subarray(1, 1 + plan.pbePages));
    const copies = plan.safe.subarray(1 + plan.pbePages);
    let next = 0;
    const inPlace = plan.inPlace.words;
    const ram = m.ram;
    await loadImage(ctx, inPlace, (pfn, page) => {
      if ((inPlace[pfn >>> 5]! >>> (pfn & 31)) & 1) {
        ram.set(page, pfn * PAGE_SIZE);
        return;
      }
      const copy = copies[next++]!;
      ram.set(page, copy * PAGE_SIZE);
      pbeList.add(copy, pfn);
    });
    if (pbeList.count !== plan.pbes) throw new RestoreRefusedError(`internal: planned ${plan.pbes} PBEs, built ${pbeList.count}`);
    return {
      decision: { resume: true, trampoline: relocateTrampoline(guest, trampoline), pbeHead: pbeList.head, context: guest.bootInfo.saved_context },
      inPlacePages: plan.inPlace.count,
      pbes: pbeList.count,
      stats: { regionPages: plan.region, regionUsed: plan.regionUsed, pagesInsideRegion: plan.inside, pagesOutsideRegion: image.pfns.length - plan.inside, safePages: plan.safe.length },
      inPlace,
    };
  },
});
