/**
 * compare-on-load: the load half of Nigel Cunningham's "a new algorithm for reading &
 * writing a hibernation image" (linux-pm, 2010).
 *
 *   1. Image pages whose original frame the boot kernel has free are loaded in place.
 *   2. For the frames the boot kernel uses, as each page is loaded: write-protect the
 *      existing data, compare it with the image page;
 *        identical                      → discard the loaded copy: nothing to restore;
 *        changed after it was protected → the fault handler sees the write and keeps a
 *                                         copy of the unmodified data (which is the
 *                                         image page) for the atomic restore;
 *        different                      → restore it atomically (a safe page, a PBE).
 *   3. The atomic restore copies only what needs it.
 *
 * The boot kernel runs on while this happens (RESUME_CHECK answered 2: no workloads, but
 * its timer, its pm task, and kcached refreshing its boot-time cache): the comparisons go
 * in batches with a timer tick of the boot kernel between them, and the kernel is stopped
 * (at its pm loop) only for the jump into the trampoline. Pages that can never be
 * write-protected (page tables, stacks, descriptor tables, the allocator's maps) are
 * always restored atomically.
 *
 *   boot kernel's frames:  [free: image page in place] [in use: compared] [free, safe]
 *   compared and identical → left as it is; otherwise → a copy in a safe page + a PBE
 *   memory taken: the in-place frames, and safe pages for the worst case (every compared
 *   page copied) + PBE pages + the trampoline.
 *
 * What makes pages identical: the same kernel's text and read-only data, and pages a
 * fresh boot recreates the same way (cache:SIZE@boot: a page cache filled at boot from
 * the seed, by a boot kernel given the same command line).
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { ImageReader } from '../image/index.ts';
import { FaultHandler, type FaultDecision, type FaultPolicy, type PageFault } from '../mmu/faults.ts';
import { WriteProtector } from '../mmu/protect.ts';
import { frameMask } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { checkSameKernel, freeOriginals, loadImage, PbeList, relocateTrampoline, unsafeWords } from './parts.ts';
import { defineRestoreStrategy, RestoreRefusedError } from './strategy.ts';

const PENDING = 0;
const SKIPPED = 1;
const COPIED = 2;
const DIRTY = 3;

export const compareOnLoad = defineRestoreStrategy({
  name: 'compare-on-load',
  description: 'load in place where the frame is free; for frames in use, write-protect, compare, skip identical pages, keep a copy of pages changed after protection, restore the rest atomically',
  origin: 'Nigel Cunningham, "a new algorithm for reading & writing a hibernation image", linux-pm 2010',
  options: declareOptions({
    batch: { kind: 'integer', default: 128, min: 1, unit: 'pages', help: 'pages compared between two timer ticks of the boot kernel, which runs on while the image is loaded' },
    settle: { kind: 'integer', default: 5, min: 0, unit: 'ticks', help: 'timer ticks the boot kernel runs after the last comparison, still watched, before it is stopped for the jump' },
    protect: { kind: 'boolean', default: true, help: 'write-protect the compared frames while the boot kernel runs (false shows what the protection is for: pages the boot kernel changes after their comparison are lost, and the oracle says which)' },
  }),
  stats: declareStats({
    pagesCompared: { kind: 'pages', help: 'image pages whose frame the boot kernel used: compared with it', aka: 'CRIU pages_compared' },
    pagesSkipped: { kind: 'pages', help: 'compared, identical and not written since: nothing to restore', aka: 'CRIU pages_skipped_cow' },
    changedAfterProtection: { kind: 'pages', help: 'identical when compared, written by the boot kernel afterwards: a copy kept for the atomic restore' },
    dirtiedBeforeCompare: { kind: 'pages', help: 'written by the boot kernel after protection, before their comparison: restored atomically' },
    restoredAtomically: { kind: 'pages', help: 'compared pages restored by the trampoline (different, unprotectable, or written)', aka: 'CRIU pages_restored' },
    unprotectable: { kind: 'pages', help: 'compared pages that can never be write-protected: always restored atomically' },
    ticksRun: { kind: 'ticks', help: 'timer ticks the boot kernel ran while the image was loaded' },
  }),

  plan(ctx, options) {
    const { guest, image } = ctx;
    const alloc = guest.allocator;
    checkSameKernel(image, guest.bootInfo);
    const unsafe = unsafeWords(image, alloc);
    const inPlace = freeOriginals(unsafe, alloc);
    const compared = image.pfns.length - inPlace.count;
    const pbePages = PbeList.pagesFor(compared);
    // The worst case: every compared page needs a copy.
    const wanted = compared + pbePages + 1;
    const bm = alloc.bitmap;
    const safe: number[] = [];
    for (let w = 0; w < bm.length && safe.length < wanted; w++) {
      for (let x = (~bm[w]! & ~unsafe[w]! & frameMask(w, alloc.frameCount)) >>> 0; x && safe.length < wanted; x = (x & (x - 1)) >>> 0) safe.push(w * 32 + 31 - Math.clz32(x & -x));
    }
    if (safe.length < wanted) {
      throw new RestoreRefusedError(
        `cannot restore with compare-on-load: ${compared} image pages have their original frame in use by the boot kernel; should every one of them need a copy, that is ${wanted} safe frames ` +
          `(with ${pbePages} PBE pages and a trampoline page), but only ${safe.length} free frames are not original locations of image pages`,
        { compared, wanted, safe: safe.length },
      );
    }
    // The boot kernel runs on during the load and needs a few frames of its own (a stack for kcached).
    if (alloc.freeCount - inPlace.count - wanted < 16) {
      throw new RestoreRefusedError(`cannot restore with compare-on-load: the boot kernel would have ${alloc.freeCount - inPlace.count - wanted} free frames left to run on while the image is loaded`, { free: alloc.freeCount });
    }
    return { unsafe, inPlace, compared, pbePages, safe: Uint32Array.from(safe), options };
  },

  async load(ctx, plan) {
    const { guest, image, swap } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const frames = alloc.frameCount;
    alloc.claimMasks(plan.inPlace.words, OWNERS.SNAPSHOT.value);
    const claim = new Uint32Array(alloc.bitmap.length);
    for (const pfn of plan.safe) claim[pfn >>> 5] = (claim[pfn >>> 5]! | (1 << (pfn & 31))) >>> 0;
    alloc.claimMasks(claim, OWNERS.SNAPSHOT.value);
    const trampolinePfn = plan.safe[0]!;
    const pbeList = new PbeList(m, plan.safe.subarray(1, 1 + plan.pbePages));
    const copies = plan.safe.subarray(1 + plan.pbePages);
    let nextCopy = 0;
    // m.ram is read at each use: the wasm memory behind it can be replaced while the boot kernel runs.
    const keep = (pfn: number, from: Uint8Array) => {
      const copy = copies[nextCopy++]!;
      m.ram.set(from, copy * PAGE_SIZE);
      pbeList.add(copy, pfn);
    };

    // The frames to compare: original locations the boot kernel uses.
    const compareWords = new Uint32Array(plan.unsafe.length);
    for (let w = 0; w < compareWords.length; w++) compareWords[w] = (plan.unsafe[w]! & ~plan.inPlace.words[w]!) >>> 0;
    // 1. Every page whose frame is free, in place (the boot kernel is still stopped).
    const inPlace = plan.inPlace.words;
    await loadImage(ctx, inPlace, (pfn, page) => m.ram.set(page, pfn * PAGE_SIZE), compareWords);

    // 2. Protect the frames to compare, then let the boot kernel run on.
    const protector = new WriteProtector(guest);
    const forbidden = protector.forbidden();
    const state = new Uint8Array(frames);
    const comparedPfns: number[] = [];
    const protectable: number[] = [];
    for (let w = 0; w < compareWords.length; w++) {
      for (let x = compareWords[w]!; x; x = (x & (x - 1)) >>> 0) {
        const pfn = w * 32 + 31 - Math.clz32(x & -x);
        comparedPfns.push(pfn);
        if (!forbidden.has(pfn)) protectable.push(pfn);
      }
    }
    let changedAfterProtection = 0;
    let dirtiedBeforeCompare = 0;
    const policy: FaultPolicy = {
      name: 'compare-on-load',
      onFault(fault: PageFault): FaultDecision {
        const s = state[fault.pfn];
        if (s === SKIPPED) {
          // Identical when compared: what it holds now, before the write, is the image page.
          keep(fault.pfn, m.ram.subarray(fault.pfn * PAGE_SIZE, (fault.pfn + 1) * PAGE_SIZE));
          state[fault.pfn] = COPIED;
          changedAfterProtection++;
        } else if (s === PENDING) {
          state[fault.pfn] = DIRTY;
        } else {
          return 'not-mine';
        }
        protector.unprotectOne(fault.pfn);
        return 'retry';
      },
    };
    if (plan.options.protect) protector.protect(protectable, 'compare-on-load');
    const handler = new FaultHandler(guest, protector, policy).install();
    let ticksRun = 0;
    let skipped = 0;
    let unprotectable = 0;
    try {
      guest.letBootKernelRun();
      // 3. Compare batch by batch, the boot kernel running a tick between batches.
      const reader = new ImageReader(image, swap);
      const page = new Uint8Array(PAGE_SIZE);
      const phase = ctx.progress.phase('compare', comparedPfns.length);
      let index = 0;
      for (let i = 0; i < comparedPfns.length; i++) {
        const pfn = comparedPfns[i]!;
        while (image.pfns[index] !== pfn) index++;
        reader.readPages(index, 1, page);
        const frame = m.ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
        if (forbidden.has(pfn)) {
          unprotectable++;
          keep(pfn, page);
          state[pfn] = COPIED;
        } else if (state[pfn] === DIRTY) {
          dirtiedBeforeCompare++;
          keep(pfn, page);
          state[pfn] = COPIED;
        } else if (Buffer.compare(frame, page) === 0) {
          state[pfn] = SKIPPED;
          skipped++;
        } else {
          keep(pfn, page);
          state[pfn] = COPIED;
          protector.unprotectOne(pfn);
        }
        if ((i + 1) % plan.options.batch === 0 || i + 1 === comparedPfns.length) {
          phase.update(i + 1);
          await guest.runTicks(1);
          ticksRun++;
        }
      }
      phase.end();
      if (plan.options.settle > 0) {
        await guest.runTicks(plan.options.settle);
        ticksRun += plan.options.settle;
      }
      // 4. Stopped at its pm loop, still watched; from here nothing runs until the jump.
      await guest.enterPm();
    } finally {
      protector.unprotectAll();
      handler.uninstall();
    }
    skipped -= changedAfterProtection;
    if (pbeList.count !== plan.compared - skipped) throw new RestoreRefusedError(`internal: ${plan.compared} pages compared, ${skipped} skipped, but ${pbeList.count} PBEs`);
    return {
      decision: { resume: true, trampoline: relocateTrampoline(guest, trampolinePfn), pbeHead: pbeList.head, context: guest.bootInfo.saved_context },
      inPlacePages: plan.inPlace.count,
      pbes: pbeList.count,
      unchangedPages: skipped,
      stats: {
        pagesCompared: plan.compared, pagesSkipped: skipped, changedAfterProtection, dirtiedBeforeCompare,
        restoredAtomically: pbeList.count, unprotectable, ticksRun,
      },
      inPlace,
    };
  },
});

